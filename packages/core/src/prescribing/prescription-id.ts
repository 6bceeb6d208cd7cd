/**
 * Prescription ids in the national short form (XXXXXX-XXXXXX-XXXXXC): six hex characters, the
 * prescriber's ODS code padded to six, a five-hex sequence and an ISO 7064 MOD 37-2 check character.
 * (h18-web's minimal stand-in; h18-core's version replaces it.)
 */
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ+';

export const PRESCRIPTION_ORDER_NUMBER_SYSTEM = 'https://fhir.nhs.uk/Id/prescription-order-number';

export function prescriptionCheckCharacter(seventeen: string): string {
  let sum = 0;
  for (const ch of seventeen.replace(/-/g, '')) {
    const v = ALPHABET.indexOf(ch.toUpperCase());
    if (v < 0) throw new RangeError('not a prescription id character');
    sum = ((sum + v) * 2) % 37;
  }
  return ALPHABET[(38 - sum) % 37]!;
}

export function isValidPrescriptionId(id: string): boolean {
  if (!/^[0-9A-F]{6}-[0-9A-Z]{6}-[0-9A-F]{5}[0-9A-Z+]$/.test(id)) return false;
  return prescriptionCheckCharacter(id.slice(0, -1)) === id.slice(-1);
}

export function makePrescriptionId(parts: { random6Hex: string; odsCode: string; sequence: number }): string {
  const ods = parts.odsCode.toUpperCase().padStart(6, '0').slice(-6);
  const seq = (parts.sequence % 0x100000).toString(16).toUpperCase().padStart(5, '0');
  const body = `${parts.random6Hex.toUpperCase()}-${ods}-${seq}`;
  return body + prescriptionCheckCharacter(body);
}
