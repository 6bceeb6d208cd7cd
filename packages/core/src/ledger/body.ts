/** prevHash of the first event of every chain. */
export const GENESIS_HASH = '0'.repeat(64);

export const HLC_PATTERN = /^\d{15}-\d{6}$/;

/**
 * An event as a store keeps it: the payload is held as its canonical JSON text, so hashing a stored
 * event never needs to parse and re-serialise the payload.
 */
export interface StoredEvent {
  id: string;
  tenant: string;
  node: string;
  seq: number;
  hlc: string;
  type: string;
  v: number;
  actor: string;
  payloadJson: string;
  prevHash: string;
  hash: string;
}

/**
 * The canonical JSON of an envelope without its hash, built by concatenation from a stored event.
 * Keys appear in RFC 8785 order (UTF-16 code-unit order: actor, hlc, id, node, payload, prevHash,
 * seq, tenant, type, v); strings are serialised exactly as JSON.stringify does, which is what RFC 8785
 * prescribes. A property test checks this equals canonicalJson() of the same envelope.
 */
export function canonicalBody(e: Omit<StoredEvent, 'hash'>): string {
  return (
    '{"actor":' +
    jsonString(e.actor) +
    ',"hlc":' +
    jsonString(e.hlc) +
    ',"id":' +
    jsonString(e.id) +
    ',"node":' +
    jsonString(e.node) +
    ',"payload":' +
    e.payloadJson +
    ',"prevHash":' +
    jsonString(e.prevHash) +
    ',"seq":' +
    String(e.seq) +
    ',"tenant":' +
    jsonString(e.tenant) +
    ',"type":' +
    jsonString(e.type) +
    ',"v":' +
    String(e.v) +
    '}'
  );
}

/** Characters JSON.stringify escapes in a string: quote, backslash, controls, lone surrogate halves. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * JSON.stringify of a string, without its cost for the usual case (ids, hashes, clocks, type names:
 * nothing to escape). Equal output by construction; the envelope property test checks it.
 */
function jsonString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"';
}
