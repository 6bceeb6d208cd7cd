/**
 * Prescription ids in the short form of the Electronic Prescription Service:
 * `XXXXXX-XXXXXX-XXXXXC` — 6 random hex characters, the prescriber's ODS code padded with leading
 * zeros to 6, a 5-hex-character sequence, then a check character: ISO/IEC 7064 MOD 37-2 over the 17
 * characters before it, alphabet 0-9, A-Z, then `+` for 36.
 */
export const PRESCRIPTION_ORDER_NUMBER_SYSTEM = 'https://fhir.nhs.uk/Id/prescription-order-number';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ+';

/** The MOD 37-2 check character of 17 characters (hyphens ignored). */
export function prescriptionCheckCharacter(seventeen: string): string {
  const chars = seventeen.replace(/-/g, '').toUpperCase();
  if (chars.length !== 17) throw new Error('a prescription id has 17 characters before its check character');
  let sum = 0;
  for (const c of chars) {
    const v = ALPHABET.indexOf(c);
    if (v < 0 || v > 35) throw new Error('a prescription id holds only digits and letters');
    sum = ((sum + v) * 2) % 37;
  }
  return ALPHABET[(38 - sum) % 37]!;
}

const SHORT_FORM = /^[0-9A-F]{6}-[0-9A-Z]{6}-[0-9A-F]{5}[0-9A-Z+]$/;

/** Whether an id is a well-formed short-form prescription id with the right check character. */
export function isValidPrescriptionId(id: string): boolean {
  if (!SHORT_FORM.test(id)) return false;
  const chars = id.replace(/-/g, '');
  let sum = 0;
  for (const c of chars.slice(0, 17)) sum = ((sum + ALPHABET.indexOf(c)) * 2) % 37;
  return (sum + ALPHABET.indexOf(chars[17]!)) % 37 === 1;
}

/** A short-form id from its parts (the caller supplies the randomness and the sequence). */
export function makePrescriptionId(parts: { random6Hex: string; odsCode: string; sequence: number }): string {
  const random = parts.random6Hex.toUpperCase();
  if (!/^[0-9A-F]{6}$/.test(random)) throw new Error('random6Hex must be 6 hex characters');
  const ods = parts.odsCode.toUpperCase();
  if (!/^[0-9A-Z]{1,6}$/.test(ods)) throw new Error('odsCode must be 1 to 6 letters and digits');
  const seq = (parts.sequence % 0x100000).toString(16).toUpperCase().padStart(5, '0');
  const body = `${random}-${ods.padStart(6, '0')}-${seq}`;
  return `${body}${prescriptionCheckCharacter(body)}`;
}
