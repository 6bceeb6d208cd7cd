/**
 * Prescription ids in the national short form of the Electronic Prescription Service:
 * `XXXXXX-XXXXXX-XXXXXC` — 6 random hex characters, the prescriber's ODS code padded with leading
 * zeros to 6, a 5-hex-character sequence per prescribing organisation, and a check character:
 * ISO/IEC 7064 MOD 37-2 over the 17 characters before it, alphabet 0-9, A-Z, then `+` for 36.
 * A pharmacy refuses an id whose check character is wrong, so one mistyped or swapped character on a
 * paper token is caught.
 */

export const PRESCRIPTION_ORDER_NUMBER_SYSTEM = 'https://fhir.nhs.uk/Id/prescription-order-number';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ+';
const MODULUS = 37;
const SHORT_FORM = /^[0-9A-F]{6}-[0-9A-Z]{6}-[0-9A-F]{5}[0-9A-Z+]$/;
const MAX_SEQUENCE = 0xfffff;

function valueOf(char: string): number {
  const v = ALPHABET.indexOf(char);
  if (v < 0 || char.length !== 1) throw new RangeError('a prescription id holds only 0-9, A-Z and +');
  return v;
}

/**
 * The check character for 17 characters (hyphens allowed and ignored). Each character in turn is
 * added to the running sum, which is then doubled, mod 37; the check makes sum + check ≡ 1 (mod 37).
 */
export function prescriptionCheckCharacter(seventeen: string): string {
  const chars = seventeen.replace(/-/g, '');
  if (chars.length !== 17) throw new RangeError('a check character is computed over 17 characters');
  let sum = 0;
  for (const c of chars) sum = ((sum + valueOf(c)) * 2) % MODULUS;
  return ALPHABET[(MODULUS + 1 - sum) % MODULUS]!;
}

/** True for `XXXXXX-XXXXXX-XXXXXC` in capitals whose check character is right. */
export function isValidPrescriptionId(id: string): boolean {
  if (!SHORT_FORM.test(id)) return false;
  const chars = id.replace(/-/g, '');
  return prescriptionCheckCharacter(chars.slice(0, 17)) === chars[17];
}

/**
 * A short-form id from its parts. The caller brings the randomness (core draws none) and the
 * organisation's next sequence number; the ODS code is padded with leading zeros to 6.
 */
export function makePrescriptionId(parts: { random6Hex: string; odsCode: string; sequence: number }): string {
  const random = parts.random6Hex.toUpperCase();
  if (!/^[0-9A-F]{6}$/.test(random)) throw new RangeError('random6Hex must be 6 hex characters');
  const ods = parts.odsCode.toUpperCase();
  if (!/^[0-9A-Z]{1,6}$/.test(ods)) throw new RangeError('the ODS code must be 1 to 6 letters and digits');
  if (!Number.isInteger(parts.sequence) || parts.sequence < 0 || parts.sequence > MAX_SEQUENCE)
    throw new RangeError(`the sequence must be a whole number from 0 to ${MAX_SEQUENCE}`);
  const body = `${random}-${ods.padStart(6, '0')}-${parts.sequence.toString(16).toUpperCase().padStart(5, '0')}`;
  return `${body}${prescriptionCheckCharacter(body)}`;
}
