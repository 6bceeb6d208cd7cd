import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  isValidPrescriptionId,
  makePrescriptionId,
  prescriptionCheckCharacter,
} from '../src/prescribing/prescription-id.ts';

/**
 * ISO/IEC 7064 MOD 37-2 over the alphabet 0-9 (0–9), A-Z (10–35), + (36). Worked by hand: for each of
 * the 17 characters, sum = (sum + value) × 2 mod 37; the check character's value is (38 − sum) mod 37,
 * so that sum + check ≡ 1 (mod 37).
 */
describe('prescription id check character: worked examples', () => {
  it('A7B8C9-A99968-00001 → X (running sum written out)', () => {
    // A=10: (0+10)×2 = 20          7: (20+7)×2 = 54 mod 37 = 17   B=11: (17+11)×2 = 56 → 19
    // 8: (19+8)×2 = 54 → 17        C=12: (17+12)×2 = 58 → 21      9: (21+9)×2 = 60 → 23
    // A=10: (23+10)×2 = 66 → 29    9: (29+9)×2 = 76 → 2            9: (2+9)×2 = 22
    // 9: (22+9)×2 = 62 → 25        6: (25+6)×2 = 62 → 25           8: (25+8)×2 = 66 → 29
    // 0: 29×2 = 58 → 21            0: 21×2 = 42 → 5                0: 5×2 = 10
    // 0: 10×2 = 20                 1: (20+1)×2 = 42 → 5
    // check = (38 − 5) mod 37 = 33 = X; and 5 + 33 = 38 ≡ 1 (mod 37).
    expect(prescriptionCheckCharacter('A7B8C9-A99968-00001')).toBe('X');
    expect(isValidPrescriptionId('A7B8C9-A99968-00001X')).toBe(true);
  });

  it('all zeros → 1 (the sum stays 0; (38 − 0) mod 37 = 1)', () => {
    expect(prescriptionCheckCharacter('000000-000000-00000')).toBe('1');
    expect(isValidPrescriptionId('000000-000000-000001')).toBe(true);
  });

  it('000000-000000-00001 → + (the last 1 doubled: sum 2; 38 − 2 = 36, the value written +)', () => {
    expect(prescriptionCheckCharacter('00000000000000001')).toBe('+');
    expect(isValidPrescriptionId('000000-000000-00001+')).toBe(true);
    // The alphabet's 36th value is +, not * (an older variant of MOD 37-2 uses *).
    expect(isValidPrescriptionId('000000-000000-00001*')).toBe(false);
  });

  it('more hand-worked ids', () => {
    // FFFFFF-FFFFFF-FFFFF: 17 × F (15); the sum runs 30, 16, 25, 6, 5, 3, 36, 28, 12, 17, 27, 10, 13,
    // 19, 31, 18, 29 → check (38 − 29) mod 37 = 9.
    expect(prescriptionCheckCharacter('FFFFFF-FFFFFF-FFFFF')).toBe('9');
    expect(modCheck('FFFFFFFFFFFFFFFFF')).toBe('9');
    expect(prescriptionCheckCharacter('123456-A83008-0000A')).toBe('X');
    expect(prescriptionCheckCharacter('1D8F2E-Y12345-000F3')).toBe('A');
    expect(prescriptionCheckCharacter('7A9B3C-000Z99-4F2D1')).toBe('C');
  });

  it('makePrescriptionId pads the ODS code to 6 and the sequence to 5 hex characters', () => {
    expect(makePrescriptionId({ random6Hex: 'a7b8c9', odsCode: 'A99968', sequence: 1 })).toBe(
      'A7B8C9-A99968-00001X',
    );
    expect(makePrescriptionId({ random6Hex: '123456', odsCode: 'A83008', sequence: 10 })).toBe(
      '123456-A83008-0000AX',
    );
    expect(makePrescriptionId({ random6Hex: '000000', odsCode: '0', sequence: 0 })).toBe(
      '000000-000000-000001',
    );
    const padded = makePrescriptionId({ random6Hex: 'ABCDEF', odsCode: 'Y123', sequence: 0xfffff });
    expect(padded.slice(0, 19)).toBe('ABCDEF-00Y123-FFFFF');
  });

  it('makePrescriptionId refuses parts that do not fit', () => {
    expect(() => makePrescriptionId({ random6Hex: 'XYZ123', odsCode: 'A1', sequence: 1 })).toThrow(/6 hex/);
    expect(() => makePrescriptionId({ random6Hex: 'ABCDEF', odsCode: 'A1234567', sequence: 1 })).toThrow(
      /ODS/,
    );
    expect(() => makePrescriptionId({ random6Hex: 'ABCDEF', odsCode: 'A1', sequence: 0x100000 })).toThrow(
      /sequence/,
    );
    expect(() => makePrescriptionId({ random6Hex: 'ABCDEF', odsCode: 'A1', sequence: 1.5 })).toThrow(
      /sequence/,
    );
  });

  it('isValidPrescriptionId refuses the wrong shape', () => {
    for (const id of [
      '',
      'A7B8C9A99968000001X',
      'A7B8C9-A99968-00001',
      'a7b8c9-a99968-00001x',
      'A7B8C9-A99968-00001XX',
      'G7B8C9-A99968-00001X',
      'A7B8C9-A99968-0000GX',
      ' A7B8C9-A99968-00001X',
    ])
      expect(isValidPrescriptionId(id), id).toBe(false);
  });
});

/** MOD 37-2 written out independently: the weighted sum Σ value × 2^(18−i) with the check weight 1. */
function modCheck(seventeen: string): string {
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ+';
  let total = 0;
  [...seventeen].forEach((c, i) => {
    let weight = 1;
    for (let k = 0; k < 17 - i; k++) weight = (weight * 2) % 37;
    total = (total + alphabet.indexOf(c) * weight) % 37;
  });
  for (let v = 0; v < 37; v++) if ((total + v) % 37 === 1) return alphabet[v]!;
  throw new Error('no check value');
}

const HEX = '0123456789ABCDEF'.split('');
const ALNUM = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'.split('');
const ALPHABET = [...ALNUM, '+'];
const parts = fc.record({
  random6Hex: fc.array(fc.constantFrom(...HEX), { minLength: 6, maxLength: 6 }).map((a) => a.join('')),
  odsCode: fc.array(fc.constantFrom(...ALNUM), { minLength: 3, maxLength: 6 }).map((a) => a.join('')),
  sequence: fc.integer({ min: 0, max: 0xfffff }),
});
/** Positions of the 18 id characters in `XXXXXX-XXXXXX-XXXXXC` (the hyphens skipped). */
const POSITIONS = [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19];

describe('prescription ids: properties', () => {
  it('every made id validates, and its check agrees with the weighted-sum form', () => {
    fc.assert(
      fc.property(parts, (p) => {
        const id = makePrescriptionId(p);
        expect(isValidPrescriptionId(id)).toBe(true);
        expect(id[19]).toBe(modCheck(id.replace(/-/g, '').slice(0, 17)));
      }),
      { numRuns: 2000 },
    );
  });

  it('changing any one character makes the id invalid', () => {
    fc.assert(
      fc.property(parts, fc.nat(17), fc.constantFrom(...ALPHABET), (p, k, replacement) => {
        const id = makePrescriptionId(p);
        const at = POSITIONS[k]!;
        fc.pre(id[at] !== replacement);
        const changed = id.slice(0, at) + replacement + id.slice(at + 1);
        expect(isValidPrescriptionId(changed)).toBe(false);
      }),
      { numRuns: 5000 },
    );
  });

  it('transposing two adjacent different characters makes the id invalid', () => {
    let transposed = 0;
    fc.assert(
      fc.property(parts, fc.nat(16), (p, k) => {
        const id = makePrescriptionId(p);
        const chars = [...id.replace(/-/g, '')];
        fc.pre(chars[k] !== chars[k + 1]);
        [chars[k], chars[k + 1]] = [chars[k + 1]!, chars[k]!];
        const swapped = `${chars.slice(0, 6).join('')}-${chars.slice(6, 12).join('')}-${chars.slice(12).join('')}`;
        transposed++;
        expect(isValidPrescriptionId(swapped)).toBe(false);
      }),
      { numRuns: 5000 },
    );
    // The property ran on real transpositions, not only on skipped equal pairs.
    expect(transposed).toBeGreaterThan(4000);
  });

  it('a substitution that keeps the shape is caught by the check character itself, not only the shape', () => {
    // Every value of the last hex block's first character, against one id: exactly one validates.
    const id = makePrescriptionId({ random6Hex: 'A7B8C9', odsCode: 'A99968', sequence: 1 });
    const valid = HEX.filter((c) => isValidPrescriptionId(`${id.slice(0, 14)}${c}${id.slice(15)}`));
    expect(valid).toEqual([id[14]]);
  });
});
