import { parsePhoneNumberFromString, validatePhoneNumberLength } from 'libphonenumber-js/max';

/**
 * Call-back numbers: a telephone number the service can ring back. Checked against the numbering
 * plans in libphonenumber-js's full metadata (which ranges are in use, how long each is), not a
 * hand-written pattern: `123456` and a mobile with a digit missing or one too many are refused.
 * A number without a country code is read as UK (the +44 plan, which includes the Channel Islands
 * and the Isle of Man). A visitor's own mobile is often the only way to reach them, so a number of
 * another country is taken when it is written with its code (+33 …, 0033 …) and is in use there.
 *
 * Stored in the national format for UK numbers (`07911 123456`, `0113 496 0000`) and the
 * international format for others (`+33 6 12 34 56 78`), so every screen, the downtime pack and a
 * handover read the same digits in the same groups. Numbers stored before this check keep whatever
 * the caller typed; they are shown as stored.
 */
export type ParsedCallbackNumber =
  { ok: true; national: string; e164: string } | { ok: false; message: string };

const EXAMPLE = 'e.g. 07911 123456 or 0113 496 0000';

export function parseCallbackNumber(input: string): ParsedCallbackNumber {
  const text = input.normalize('NFKC').trim();
  if (text === '') return { ok: false, message: `is required (${EXAMPLE})` };
  // Spaces, dashes, dots and brackets are how people group digits; letters and anything else are
  // refused, so a pasted "ext. 12" or a typed O for 0 never passes.
  if (!/^\+?[0-9\s().-]+$/.test(text))
    return { ok: false, message: `must be digits only (spaces are fine), ${EXAMPLE}` };
  const digits = text.replace(/\D/g, '');
  if (digits.length < 3) return { ok: false, message: `is too short for a UK telephone number (${EXAMPLE})` };
  const number = parsePhoneNumberFromString(text, 'GB');
  if (!number) return { ok: false, message: `is not a UK telephone number (${EXAMPLE})` };
  if (number.countryCallingCode !== '44')
    return number.isValid()
      ? { ok: true, national: number.formatInternational(), e164: number.number }
      : {
          ok: false,
          message: `is not a number in use in the country of +${number.countryCallingCode}: check each digit with the caller`,
        };
  if (number.isValid()) return { ok: true, national: number.formatNational(), e164: number.number };
  switch (validatePhoneNumberLength(text, 'GB')) {
    case 'TOO_SHORT':
      return {
        ok: false,
        message: `is too short for a UK telephone number: a digit may be missing (${EXAMPLE})`,
      };
    case 'TOO_LONG':
      return {
        ok: false,
        message: `is too long for a UK telephone number: a digit may be repeated (${EXAMPLE})`,
      };
    case 'INVALID_LENGTH':
      return {
        ok: false,
        message: `has the wrong number of digits for a UK number starting like this (${EXAMPLE})`,
      };
    case 'INVALID_COUNTRY':
    case 'NOT_A_NUMBER':
    case undefined:
      return {
        ok: false,
        message: `is not a UK telephone number in use: check each digit with the caller (${EXAMPLE})`,
      };
  }
}
