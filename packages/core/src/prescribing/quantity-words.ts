/**
 * Quantities in words, as a schedule 2 or 3 prescription must carry them beside the figures
 * ("twenty-eight (28) tablets"). British usage: "one hundred and five". Whole numbers up to
 * 999,999 and decimals ("two point five").
 */

const ONES = [
  'zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten',
  'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen',
]; // prettier-ignore
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];
const MAX_WORDED = 999_999;

function below100(n: number): string {
  if (n < 20) return ONES[n]!;
  const tens = TENS[Math.floor(n / 10)]!;
  return n % 10 === 0 ? tens : `${tens}-${ONES[n % 10]!}`;
}

function below1000(n: number): string {
  const hundreds = Math.floor(n / 100);
  const rest = n % 100;
  if (hundreds === 0) return below100(rest);
  return rest === 0 ? `${ONES[hundreds]!} hundred` : `${ONES[hundreds]!} hundred and ${below100(rest)}`;
}

function wholeInWords(n: number): string {
  if (n < 1000) return below1000(n);
  const thousands = Math.floor(n / 1000);
  const rest = n % 1000;
  const head = `${below1000(thousands)} thousand`;
  if (rest === 0) return head;
  return rest < 100 ? `${head} and ${below100(rest)}` : `${head} ${below1000(rest)}`;
}

/** 28 → "twenty-eight"; 105 → "one hundred and five"; 2.5 → "two point five". */
export function quantityInWords(n: number): string {
  if (!Number.isFinite(n) || n < 0 || n > MAX_WORDED)
    throw new RangeError(`a quantity in words must be from 0 to ${MAX_WORDED}`);
  const [whole, fraction] = String(n).split('.') as [string, string | undefined];
  const words = wholeInWords(Number(whole));
  if (fraction === undefined) return words;
  return `${words} point ${[...fraction].map((d) => ONES[Number(d)]!).join(' ')}`;
}

/** Words a quantity may stand beside without changing it: units, and "only" as in "twenty only". */
const IGNORED = new Set([
  'and', 'only', 'x',
  'tablet', 'tablets', 'capsule', 'capsules', 'ml', 'millilitre', 'millilitres', 'milliliter', 'milliliters',
  'dose', 'doses', 'puff', 'puffs', 'sachet', 'sachets', 'tube', 'tubes', 'pack', 'packs', 'mg', 'milligrams',
  'unit', 'units', 'of', 'pre-filled', 'syringe', 'syringes', 'device', 'devices', 'bottle', 'bottles',
]); // prettier-ignore

function numberTokens(words: string): string[] {
  return words
    .toLowerCase()
    .replace(/[(),.-]/g, ' ')
    .split(/\s+/)
    .filter((t) => t !== '' && !IGNORED.has(t));
}

/**
 * True when the words are the figures written out ("twenty-eight tablets", "Twenty eight" and
 * "twenty-eight (28)" all match 28 — digits in brackets aside, units and "and" aside). Anything else
 * written differently does not match: the prescriber corrects it, not the checker.
 */
export function wordsMatchQuantity(words: string | null, n: number): boolean {
  if (words === null || !Number.isFinite(n) || n < 0 || n > MAX_WORDED) return false;
  const figuresInBrackets = words.match(/\(\s*([0-9.]+)\s*\)/g) ?? [];
  for (const f of figuresInBrackets) if (Number(f.replace(/[()\s]/g, '')) !== n) return false;
  const given = numberTokens(words.replace(/\(\s*[0-9.]+\s*\)/g, ' '));
  const expected = numberTokens(quantityInWords(n));
  return given.length === expected.length && given.every((t, i) => t === expected[i]);
}
