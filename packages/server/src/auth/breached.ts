import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * The breached-password corpus: the 49,233 most common passwords of public breach dumps, as shipped
 * in the file `src/passwords.json` of @zxcvbn-ts/language-common (MIT). It is read once, on first
 * use, into a set of about 3 MB; a list this size needs no Bloom filter. No network is involved.
 */
let corpus: Set<string> | null = null;

export function breachedCorpus(): Set<string> {
  if (!corpus) {
    const file = createRequire(import.meta.url).resolve('@zxcvbn-ts/language-common/src/passwords.json');
    const words = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    if (!Array.isArray(words) || words.length < 10_000)
      throw new Error(`the breached-password list ${file} is missing or truncated`);
    corpus = new Set(words.map((w) => String(w).normalize('NFKC').toLowerCase()));
  }
  return corpus;
}

/** Whether a folded password (NFKC, lower-case) is in the corpus. */
export function isBreachedPassword(folded: string): boolean {
  return breachedCorpus().has(folded);
}
