import canonicalize from 'canonicalize';

/**
 * RFC 8785 (JSON Canonicalization Scheme) serialisation. Throws on values JSON cannot carry
 * exactly (NaN, Infinity, lone surrogates), so nothing ambiguous is ever hashed.
 */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value has no JSON representation');
  return text;
}
