/**
 * NHS number (ISB 0149): ten digits, the tenth a Modulus 11 check digit over the first nine with
 * weights 10 to 2. A number passing the check is well-formed only; whether it was verified against
 * the national service is a separate status.
 */
export type NhsNumberResult = { ok: true; value: string } | { ok: false; message: string };

export function normaliseNhsNumber(input: string): NhsNumberResult {
  const stripped = input.replace(/[\s-]/g, '');
  if ([...stripped].some((c) => c.charCodeAt(0) > 0x7f)) {
    return {
      ok: false,
      message: "must use the digits 0-9 only (other scripts' digits and full-width digits are not accepted)",
    };
  }
  if (!/^\d{10}$/.test(stripped)) return { ok: false, message: 'must be 10 digits, e.g. 943 476 5919' };
  const digits = [...stripped].map(Number);
  const sum = digits.slice(0, 9).reduce((acc, d, i) => acc + d * (10 - i), 0);
  const check = 11 - (sum % 11);
  if (check === 10)
    return {
      ok: false,
      message: 'is not a valid NHS number (no number with these first nine digits exists)',
    };
  if ((check === 11 ? 0 : check) !== digits[9])
    return { ok: false, message: 'is not a valid NHS number (the check digit does not match)' };
  return { ok: true, value: stripped };
}

export function formatNhsNumber(value: string): string {
  return `${value.slice(0, 3)} ${value.slice(3, 6)} ${value.slice(6)}`;
}
