import { inflateSync } from 'node:zlib';

/**
 * Just enough PDF reading for the tests: pdfkit writes text in an embedded font as glyph ids, so the
 * text is recovered through each font's ToUnicode map. Returns one text per font (each decodes the
 * strings drawn in that font; strings of other fonts come out as noise), lines in drawing order.
 */
export function pdfTexts(pdf: Buffer): string[] {
  const raw = pdf.toString('latin1');
  const streams: string[] = [];
  const start = /stream\r?\n/g;
  for (let m = start.exec(raw); m; m = start.exec(raw)) {
    if (raw.slice(Math.max(0, m.index - 3), m.index) === 'end') continue; // "endstream"
    const from = m.index + m[0].length;
    const to = raw.indexOf('endstream', from);
    const dictStart = raw.lastIndexOf(' obj', m.index);
    const dict = raw.slice(dictStart, m.index);
    const bytes = pdf.subarray(from, to);
    if (dict.includes('/FlateDecode')) {
      try {
        streams.push(inflateSync(bytes).toString('latin1'));
      } catch {
        // a stream that is not whole (never in a good file): left out
      }
    } else streams.push(bytes.toString('latin1'));
    start.lastIndex = to;
  }
  const cmaps = streams.filter((s) => s.includes('beginbfrange')).map(parseCmap);
  const contents = streams.filter((s) => /\]\s*TJ/.test(s));
  return cmaps.map((cmap) =>
    contents
      .map((content) =>
        [...content.matchAll(/\[([^\]]*)\]\s*TJ/g)]
          .map((tj) => [...tj[1]!.matchAll(/<([0-9a-fA-F]+)>/g)].map((hex) => decode(hex[1]!, cmap)).join(''))
          .join('\n'),
      )
      .join('\n'),
  );
}

function parseCmap(text: string): Map<number, string> {
  const map = new Map<number, string>();
  for (const m of text.matchAll(/<([0-9a-f]+)>\s*<([0-9a-f]+)>\s*\[([^\]]*)\]/gi)) {
    let gid = parseInt(m[1]!, 16);
    for (const entry of m[3]!.matchAll(/<([^>]*)>/g)) {
      const units = entry[1]!
        .split(/\s+/)
        .filter(Boolean)
        .map((h) => parseInt(h, 16));
      map.set(gid++, String.fromCharCode(...units));
    }
  }
  return map;
}

function decode(hex: string, cmap: Map<number, string>): string {
  let out = '';
  for (let i = 0; i + 4 <= hex.length; i += 4) out += cmap.get(parseInt(hex.slice(i, i + 4), 16)) ?? '\uFFFD';
  return out;
}

/** The decoded text (of whichever font) that holds every needle. */
export function textWith(pdf: Buffer, needles: string[]): string {
  const found = pdfTexts(pdf).find((t) => needles.every((n) => t.includes(n)));
  if (!found) throw new Error(`no font's text holds all of ${JSON.stringify(needles)}`);
  return found;
}
