/**
 * Who a pathway is for. A pathway may name an age range in whole years (`min` inclusive, `below`
 * exclusive): a pathway written for children under 5 walked for a 76-year-old asks the wrong
 * questions and reaches the wrong dispositions, so it is not offered for a patient outside its range.
 */
export interface PathwayAges {
  min?: number | undefined;
  below?: number | undefined;
}

/** Whole years between a date of birth (YYYY-MM-DD) and a moment (the call), by the calendar. */
export function ageInYears(dateOfBirth: string, atIso: string): number {
  const [by, bm, bd] = dateOfBirth.slice(0, 10).split('-').map(Number) as [number, number, number];
  const at = new Date(atIso);
  const [ay, am, ad] = [at.getUTCFullYear(), at.getUTCMonth() + 1, at.getUTCDate()];
  return ay - by - (am < bm || (am === bm && ad < bd) ? 1 : 0);
}

/** Who the pathway is for, in words ("under 5", "16 and over", "5 to 15"), or null when anyone. */
export function describeAges(ages: PathwayAges | null | undefined): string | null {
  if (!ages || (ages.min === undefined && ages.below === undefined)) return null;
  if (ages.min === undefined) return `under ${ages.below}`;
  if (ages.below === undefined) return `${ages.min} and over`;
  return `${ages.min} to ${ages.below - 1}`;
}

/** Why the pathway is not for a patient of this age, or null when it is. */
export function pathwayNotForAge(ages: PathwayAges | null | undefined, age: number): string | null {
  if (!ages) return null;
  const outside =
    (ages.min !== undefined && age < ages.min) || (ages.below !== undefined && age >= ages.below);
  return outside ? `this pathway is for patients aged ${describeAges(ages)}` : null;
}
