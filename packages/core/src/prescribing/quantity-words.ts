/** Quantities in words, as a controlled-drug prescription writes them ("twenty-eight"). */
const ONES = [
  'zero',
  'one',
  'two',
  'three',
  'four',
  'five',
  'six',
  'seven',
  'eight',
  'nine',
  'ten',
  'eleven',
  'twelve',
  'thirteen',
  'fourteen',
  'fifteen',
  'sixteen',
  'seventeen',
  'eighteen',
  'nineteen',
];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

function below1000(n: number): string {
  if (n < 20) return ONES[n]!;
  if (n < 100) return TENS[Math.floor(n / 10)]! + (n % 10 ? `-${ONES[n % 10]!}` : '');
  const rest = n % 100;
  return `${ONES[Math.floor(n / 100)]!} hundred${rest ? ` and ${below1000(rest)}` : ''}`;
}

/** Whole numbers 0–999,999 in words; a decimal part is read digit by digit ("two point five"). */
export function quantityInWords(n: number): string {
  if (!Number.isFinite(n) || n < 0 || n >= 1_000_000) throw new RangeError('quantity out of range');
  const whole = Math.floor(n);
  const thousands = Math.floor(whole / 1000);
  const rest = whole % 1000;
  let words =
    thousands > 0
      ? `${below1000(thousands)} thousand${rest ? (rest < 100 ? ' and ' : ' ') + below1000(rest) : ''}`
      : below1000(rest);
  const decimals = String(n).split('.')[1];
  if (decimals) words += ` point ${[...decimals].map((d) => ONES[Number(d)]!).join(' ')}`;
  return words;
}

const normalise = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z ]+/g, ' ')
    .replace(/\band\b/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();

/** Whether words written on a prescription say the same quantity as the figures. */
export function wordsMatchQuantity(words: string, n: number): boolean {
  try {
    return normalise(words) === normalise(quantityInWords(n));
  } catch {
    return false;
  }
}
