import type { PatientRecord } from './events.ts';

const DAY_MS = 86_400_000;

/**
 * Whether a FHIR Period applies at `nowMs`: it has no end, or its end is still to come. An end given
 * as a date covers that whole day (UTC); a start still to come does not apply yet.
 */
export function periodApplies(period: { start?: string; end?: string }, nowMs: number): boolean {
  if (period.end !== undefined && nowMs >= boundaryMs(period.end, 'end')) return false;
  if (period.start !== undefined && nowMs < boundaryMs(period.start, 'start')) return false;
  return true;
}

function boundaryMs(value: string, side: 'start' | 'end'): number {
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    const day = Date.parse(`${value}T00:00:00Z`);
    return side === 'end' ? day + DAY_MS : day;
  }
  return Date.parse(value);
}

const NAME_PREFERENCE = ['official', 'usual', undefined, 'other', 'temp', 'nickname'] as const;

/**
 * The record as it stands at `nowMs`: where names, addresses or practice registrations come with
 * their history (`names`, `addresses`, `practices`), the main name, address, other addresses and
 * registered practice are taken from the entries whose period applies now. Ended entries stay in
 * the history and are never used as current. Records without history are returned as they are.
 */
export function currentRecord<R extends Partial<PatientRecord>>(record: R, nowMs: number): R {
  const out: R = { ...record };
  if (record.names && record.names.length > 0) {
    const current = record.names.filter(
      (n) => periodApplies(n, nowMs) && n.use !== 'old' && n.use !== 'maiden',
    );
    const pick = NAME_PREFERENCE.map((use) => current.find((n) => n.use === use)).find((n) => n);
    // A record must keep a name to be found: when every name has ended, the one it was registered
    // under stays (the history shows it ended).
    if (pick) {
      out.givenName = pick.givenName;
      out.familyName = pick.familyName;
    }
  }
  if (record.addresses && record.addresses.length > 0) {
    const current = record.addresses.filter((a) => periodApplies(a, nowMs));
    // The main address is the first current home address, else the first current one.
    const homeAt = current.findIndex((a) => a.use === 'home');
    const mainAt = homeAt >= 0 ? homeAt : current.length > 0 ? 0 : -1;
    const main = current[mainAt];
    const others = current.filter((_, i) => i !== mainAt);
    delete out.address;
    delete out.postcode;
    delete out.otherAddresses;
    if (main) {
      out.address = main.text;
      if (main.postcode !== undefined) out.postcode = main.postcode;
    }
    if (others.length > 0)
      out.otherAddresses = others.slice(0, 5).map((a) => ({
        use: a.use === 'home' ? 'other' : a.use,
        text: a.text,
        ...(a.postcode !== undefined ? { postcode: a.postcode } : {}),
      }));
  }
  if (record.practices && record.practices.length > 0) {
    const current = record.practices.find((p) => periodApplies(p, nowMs));
    delete out.registeredPractice;
    if (current)
      out.registeredPractice = {
        odsCode: current.odsCode,
        ...(current.name !== undefined ? { name: current.name } : {}),
      };
  }
  return out;
}
