/**
 * A text field's limit, shown while typing ("54 of 300 characters") and, past it, said in plain
 * words at once rather than after submitting. Counted as the server counts: characters (not UTF-16
 * units) of the text with its surrounding spaces trimmed.
 */
export function characterCount(value: string): number {
  return [...value.trim()].length;
}

export function lengthFeedback(value: string, max: number): { description: string; error?: string } {
  const used = characterCount(value);
  const description = `${used} of ${max} characters`;
  if (used <= max) return { description };
  const over = used - max;
  return {
    description,
    error: `This is ${over} character${over === 1 ? '' : 's'} too long: at most ${max} characters.`,
  };
}

/** True when any of the values is over its limit (the form is not sent until it is shortened). */
export function anyTooLong(...fields: [string, number][]): boolean {
  return fields.some(([value, max]) => characterCount(value) > max);
}
