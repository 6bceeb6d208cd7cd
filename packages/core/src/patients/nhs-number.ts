/**
 * NHS number (ISB 0149): ten digits, the tenth a Modulus 11 check digit over the first nine with
 * weights 10 to 2. A number passing the check is well-formed only; whether it was verified against
 * the national service is a separate status.
 */
export type NhsNumberResult = { ok: true; value: string } | { ok: false; message: string };

/** The forms people type: ten digits, or 3-3-4 with a space (or tab) or hyphen between the groups. */
const TYPED_FORM = /^(\d{3})(?:[ \t]+|-)?(\d{3})(?:[ \t]+|-)?(\d{4})$/;

/** Characters people paste by mistake, named, since several look like a hyphen or like nothing. */
const CHARACTER_NAMES: Readonly<Record<string, string>> = {
  '\u2010': 'a Unicode hyphen',
  '\u2011': 'a non-breaking hyphen',
  '\u2012': 'a figure dash',
  '\u2013': 'an en dash',
  '\u2014': 'an em dash',
  '\u2212': 'a minus sign',
  '\u00a0': 'a non-breaking space',
  '\u2007': 'a figure space',
  '\u202f': 'a narrow no-break space',
  '\u200b': 'an invisible zero-width space',
  '\u200c': 'an invisible zero-width non-joiner',
  '\u200d': 'an invisible zero-width joiner',
  '\u2060': 'an invisible word joiner',
  '\ufeff': 'an invisible byte-order mark',
  '.': 'a full stop',
  ',': 'a comma',
  '/': 'a slash',
  '+': 'a plus sign',
  _: 'an underscore',
};

function describeCharacter(c: string): string {
  const code = `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
  const named = CHARACTER_NAMES[c];
  if (named) return `${named} (${code})`;
  if (/^[\x21-\x7e]$/.test(c)) return `"${c}"`;
  return `the character ${code}`;
}

export function normaliseNhsNumber(input: string): NhsNumberResult {
  const trimmed = input.replace(/^[ \t]+|[ \t]+$/g, '');
  const chars = [...trimmed];
  if (chars.some((c) => /\p{Nd}/u.test(c) && !/[0-9]/.test(c))) {
    return {
      ok: false,
      message: "must use the digits 0-9 only (other scripts' digits and full-width digits are not accepted)",
    };
  }
  // Name the first character that has no place in an NHS number (a pasted en dash or an invisible
  // space would otherwise be reported as a wrong length, which sends people looking for a digit).
  const wrong = chars.findIndex((c) => !/[0-9 \t-]/.test(c));
  if (wrong >= 0)
    return {
      ok: false,
      message: `contains ${describeCharacter(chars[wrong]!)} at character ${wrong + 1}: use the digits 0-9, spaced as in 943 476 5919`,
    };
  const digitCount = chars.filter((c) => /[0-9]/.test(c)).length;
  if (digitCount !== 10) return { ok: false, message: 'must be 10 digits, e.g. 943 476 5919' };
  const form = TYPED_FORM.exec(trimmed);
  if (!form)
    return {
      ok: false,
      message:
        'has a space or hyphen in the wrong place: write it as 943 476 5919, 943-476-5919 or 9434765919',
    };
  const value = form.slice(1, 4).join('');
  // Ten identical digits pass the check (1111111111 does) but are never issued: a placeholder typed
  // to get past the field.
  if (/^(\d)\1{9}$/.test(value))
    return { ok: false, message: 'is not a valid NHS number (ten identical digits are never issued)' };
  const digits = [...value].map(Number);
  const sum = digits.slice(0, 9).reduce((acc, d, i) => acc + d * (10 - i), 0);
  const check = 11 - (sum % 11);
  if (check === 10)
    return {
      ok: false,
      message: 'is not a valid NHS number (no number with these first nine digits exists)',
    };
  if ((check === 11 ? 0 : check) !== digits[9])
    return { ok: false, message: 'is not a valid NHS number (the check digit does not match)' };
  return { ok: true, value };
}

export function formatNhsNumber(value: string): string {
  return `${value.slice(0, 3)} ${value.slice(3, 6)} ${value.slice(6)}`;
}
