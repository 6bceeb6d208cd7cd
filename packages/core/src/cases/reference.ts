/**
 * A case's short reference: what staff read out, write on paper (the downtime pack) and type back in
 * to find the case. The first eight hex digits of the case id (case ids are random UUIDs, so these are
 * random too), upper case in two groups of four: "3F2A-9C1B". Stable, derived, nothing stored.
 * Among a pack's at most 2,000 open cases two share one with a chance of about 1 in 2,000; the pack
 * prints the patient and call-back number beside it, so a clash is seen, not silently mixed up.
 */
export function caseReference(caseId: string): string {
  const hex = caseId.replace(/-/g, '').slice(0, 8).toUpperCase();
  return `${hex.slice(0, 4)}-${hex.slice(4, 8)}`;
}
