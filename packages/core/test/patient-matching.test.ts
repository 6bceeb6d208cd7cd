import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  damerauLevenshtein,
  foldText,
  formatPostcode,
  isUkPostcode,
  matchFamilyName,
  matchGivenName,
  matchDateOfBirth,
  matchPatient,
  matchPostcode,
  nameKey,
  normalisePostcode,
  typoTolerance,
  type PatientMatchCandidate,
} from '../src/patients/matching.ts';

const NFC = 'Siobh\u00e1n O\u2019Brien';
const NFD = 'Siobha\u0301n O\u2019Brien';

describe('folding names', () => {
  it.each([
    [NFC, 'siobhan obrien'],
    [NFD, 'siobhan obrien'],
    ["O'BRIEN", 'obrien'],
    ['O Brien', 'o brien'],
    ['Smith-Jones', 'smith jones'],
    ['Zo\u00eb \u00c5ngstr\u00f6m', 'zoe angstrom'],
    ['Stra\u00dfe', 'strasse'],
    ['\u0141ukasz S\u00f8rensen', 'lukasz sorensen'],
    ['\u0130lkay', 'ilkay'],
    ['\uff33\uff49\uff4f\uff42\uff48\uff41\uff4e', 'siobhan'], // full-width
    ['Si\u200bob\u200dhan', 'siobhan'], // zero-width space and joiner
    ['\u202eSiobhan\u202c', 'siobhan'], // right-to-left override and pop
    ['\u200fSiobhan\u200e', 'siobhan'], // right-to-left and left-to-right marks
    ['\ufeffSiobhan\u00ad', 'siobhan'], // BOM and soft hyphen
    ['  Mary\tAnn  ', 'mary ann'],
    ["x' OR '1'='1", 'x or 1 1'],
  ])('%j folds to %j', (input, folded) => {
    expect(foldText(input)).toBe(folded);
  });

  it('NFC and NFD spellings of the same name give the same key, whatever the name', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 30 }), (s) => {
        expect(nameKey(s.normalize('NFC'))).toBe(nameKey(s.normalize('NFD')));
        expect(foldText(s.normalize('NFKC'))).toBe(foldText(s.normalize('NFKD')));
      }),
      { numRuns: 2000 },
    );
  });

  it('invisible characters anywhere never change the key', () => {
    const invisible = fc.constantFrom(
      '\u200b',
      '\u200c',
      '\u200d',
      '\u200e',
      '\u200f',
      '\u202e',
      '\u2066',
      '\ufeff',
    );
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z' -]{1,20}$/),
        fc.array(fc.tuple(fc.nat(), invisible), { maxLength: 5 }),
        (name, inserts) => {
          let s = name;
          for (const [at, c] of inserts) {
            const i = at % (s.length + 1);
            s = s.slice(0, i) + c + s.slice(i);
          }
          expect(nameKey(s)).toBe(nameKey(name));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('keys hold only letters and digits', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        expect(nameKey(s)).toMatch(/^[\p{L}\p{N}]*$/u);
      }),
    );
  });
});

describe('Damerau-Levenshtein distance (optimal string alignment)', () => {
  it.each([
    ['', '', 0],
    ['abc', '', 3],
    ['', 'ab', 2],
    ['obrien', 'obrien', 0],
    ['obrien', 'obrein', 1], // transposition
    ['siobhan', 'siobahn', 1], // transposition
    ['siobhan', 'siobhen', 1], // substitution
    ['siobhan', 'siobhn', 1], // deletion
    ['siobhan', 'siobhaan', 1], // insertion
    ['kitten', 'sitting', 3],
    ['ca', 'abc', 3], // optimal string alignment, not the unrestricted distance (2)
    ['\u{1d4d0}b', 'b\u{1d4d0}', 1], // code points, not UTF-16 units
  ])('d(%j, %j) = %d', (a, b, d) => {
    expect(damerauLevenshtein(a, b)).toBe(d);
    expect(damerauLevenshtein(b, a)).toBe(d);
  });

  /** The textbook recurrence, written out independently of the code under test. */
  function reference(a: string, b: string): number {
    const x = [...a];
    const y = [...b];
    const d: number[][] = Array.from({ length: x.length + 1 }, (_, i) =>
      Array.from({ length: y.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
    );
    for (let i = 1; i <= x.length; i++)
      for (let j = 1; j <= y.length; j++) {
        const cost = x[i - 1] === y[j - 1] ? 0 : 1;
        d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
        if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1])
          d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
      }
    return d[x.length]![y.length]!;
  }

  it('agrees with the textbook recurrence, and its bounded form with min(d, max + 1)', () => {
    const word = fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'd'), maxLength: 9 });
    fc.assert(
      fc.property(word, word, fc.nat({ max: 4 }), (a, b, max) => {
        const d = reference(a, b);
        expect(damerauLevenshtein(a, b)).toBe(d);
        expect(damerauLevenshtein(a, b, max)).toBe(Math.min(d, max + 1));
      }),
      { numRuns: 5000 },
    );
  });

  it('tolerates no typo in two letters, one up to seven, two from eight', () => {
    expect([1, 2, 3, 7, 8, 20].map(typoTolerance)).toEqual([0, 0, 1, 1, 2, 2]);
  });
});

describe('postcodes', () => {
  it.each([
    ['LS1 4AP', 'LS14AP'],
    ['ls14ap', 'LS14AP'],
    ['  ls1   4ap ', 'LS14AP'],
    ['LS1\u00a04AP', 'LS14AP'], // no-break space
    ['LS1\u200b4AP', 'LS14AP'], // zero-width space
    ['\uff2c\uff33\uff11 \uff14\uff21\uff30', 'LS14AP'], // full-width
  ])('%j normalises to %j', (input, compact) => {
    expect(normalisePostcode(input)).toBe(compact);
  });

  it('knows the shapes of UK postcodes and formats them', () => {
    for (const p of [
      'LS14AP',
      'M11AE',
      'SW1A1AA',
      'EC1A1BB',
      'B338TH',
      'CR26XH',
      'DN551PT',
      'GIR0AA',
      'ZZ993VZ',
    ])
      expect(isUkPostcode(p), p).toBe(true);
    for (const p of ['', 'LS1', '14AP', 'LS14A', 'LS1 4AP', 'LS14APX', '123456', 'L\u0661S14AP'])
      expect(isUkPostcode(p), p).toBe(false);
    expect(formatPostcode('SW1A1AA')).toBe('SW1A 1AA');
    expect(formatPostcode('M11AE')).toBe('M1 1AE');
  });

  it('ranks an exact postcode above a typo, a typo above the same district, and that above another', () => {
    expect(matchPostcode('ls1 4ap', ['LS1 4AP'])).toBe('exact');
    expect(matchPostcode('LS1 4PA', ['LS1 4AP'])).toBe('typo');
    expect(matchPostcode('LS1 9ZZ', ['LS1 4AP'])).toBe('district');
    expect(matchPostcode('M1 1AE', ['LS1 4AP'])).toBe('different');
    expect(matchPostcode('M1 1AE', ['LS1 4AP', 'm11ae'])).toBe('exact'); // any known address
    expect(matchPostcode(undefined, ['LS1 4AP'])).toBe('not_given');
    expect(matchPostcode('M1 1AE', [])).toBe('not_recorded');
  });
});

describe('matching names', () => {
  it('family names: exact, one typo, two typos from eight letters, a part of a double-barrelled name', () => {
    expect(matchFamilyName('obrien', 'O\u2019Brien')).toEqual({ kind: 'exact', edits: 0 });
    expect(matchFamilyName('O Brien', "O'Brien")).toEqual({ kind: 'exact', edits: 0 });
    expect(matchFamilyName("O'Brein", 'O\u2019Brien')).toEqual({ kind: 'typo', edits: 1 });
    expect(matchFamilyName('Fernandez', 'Fern\u00e1ndes')).toEqual({ kind: 'typo', edits: 1 });
    expect(matchFamilyName('Wolstenholm', 'Wolstenholme')).toEqual({ kind: 'typo', edits: 1 });
    expect(matchFamilyName('Wolstinholm', 'Wolstenholme')).toEqual({ kind: 'typo', edits: 2 });
    expect(matchFamilyName('Smith', 'Smith-Jones')).toEqual({ kind: 'part', edits: 0 });
    expect(matchFamilyName('Smyth', 'Smith')).toEqual({ kind: 'typo', edits: 1 });
    expect(matchFamilyName('Smythe', 'Smith')).toBeNull(); // two edits in five letters
    expect(matchFamilyName('Ng', 'Ny')).toBeNull(); // no typo in two letters
    expect(matchFamilyName('Jones', 'Brown')).toBeNull();
    expect(matchFamilyName('', 'Brown')).toBeNull();
    expect(matchFamilyName('\u200b', 'Brown')).toBeNull();
  });

  it('given names: the first name against the whole given name and its words; initials and prefixes weakly', () => {
    expect(matchGivenName('siobhan', NFC.split(' ')[0]!)?.kind).toBe('exact');
    expect(matchGivenName('Mary', 'Mary Ann')?.kind).toBe('exact');
    expect(matchGivenName('Ann', 'Mary Ann')?.kind).toBe('part');
    expect(matchGivenName('Siobahn', 'Siobh\u00e1n')).toEqual({ kind: 'typo', edits: 1 });
    expect(matchGivenName('Jon', 'John')).toEqual({ kind: 'typo', edits: 1 });
    expect(matchGivenName('J', 'John')?.kind).toBe('initial');
    expect(matchGivenName('Chris', 'Christopher')?.kind).toBe('prefix');
    expect(matchGivenName('Aoife', 'Siobh\u00e1n')).toBeNull(); // a twin
  });
});

describe('matching a patient: date of birth exact, names tolerant, postcode ranks', () => {
  const siobhan: PatientMatchCandidate = {
    familyName: 'O\u2019Brien',
    givenName: 'Siobh\u00e1n',
    dateOfBirth: '1980-05-17',
    postcodes: ['BT7 1NN'],
  };

  it("finds Siobhán O’Brien from 'siobhan obrien', exactly", () => {
    expect(
      matchPatient({ familyName: 'obrien', givenName: 'siobhan', dateOfBirth: '1980-05-17' }, siobhan),
    ).toEqual({
      score: 90,
      dateOfBirth: 'exact',
      familyName: 'exact',
      givenName: 'exact',
      postcode: 'not_given',
    });
    expect(
      matchPatient(
        { familyName: 'obrien', givenName: 'siobhan', dateOfBirth: '1980-05-17', postcode: 'bt71nn' },
        siobhan,
      ),
    ).toEqual({
      score: 100,
      dateOfBirth: 'exact',
      familyName: 'exact',
      givenName: 'exact',
      postcode: 'exact',
    });
  });

  it('never matches another date of birth, however close the rest', () => {
    for (const dateOfBirth of ['1980-05-18', '1980-17-05', '1981-05-17', '1980-5-17', ''])
      expect(matchPatient({ familyName: "O'Brien", givenName: 'Siobhán', dateOfBirth }, siobhan)).toBeNull();
  });

  it('a typo costs points: an exact match always ranks above a misspelt one', () => {
    const exact = matchPatient(
      { familyName: 'OBrien', givenName: 'Siobhan', dateOfBirth: '1980-05-17' },
      siobhan,
    )!;
    const typo = matchPatient(
      { familyName: 'OBrein', givenName: 'Siobhan', dateOfBirth: '1980-05-17' },
      siobhan,
    )!;
    const twoTypos = matchPatient(
      { familyName: 'OBrein', givenName: 'Siobahn', dateOfBirth: '1980-05-17' },
      siobhan,
    )!;
    expect(exact.score).toBeGreaterThan(typo.score);
    expect(typo.score).toBeGreaterThan(twoTypos.score);
    expect(twoTypos).toMatchObject({ familyName: 'typo', givenName: 'typo' });
  });

  it('a postcode never excludes (people move) but ranks', () => {
    const here = matchPatient(
      { familyName: 'OBrien', dateOfBirth: '1980-05-17', postcode: 'BT7 1NN' },
      siobhan,
    )!;
    const moved = matchPatient(
      { familyName: 'OBrien', dateOfBirth: '1980-05-17', postcode: 'M1 1AE' },
      siobhan,
    )!;
    expect(moved).not.toBeNull();
    expect(here.score).toBeGreaterThan(moved.score);
  });

  it('scores stay within 0–100 and a match always has the same date of birth', () => {
    const name = fc.stringMatching(/^[A-Za-z\u00e1\u00e9' -]{1,12}$/);
    const date = fc.constantFrom('1980-05-17', '1980-05-18');
    fc.assert(
      fc.property(name, fc.option(name), date, name, name, date, (f, g, d, cf, cg, cd) => {
        const m = matchPatient(
          { familyName: f, givenName: g ?? undefined, dateOfBirth: d },
          { familyName: cf, givenName: cg, dateOfBirth: cd, postcodes: [] },
        );
        if (m) {
          expect(d).toBe(cd);
          expect(m.score).toBeGreaterThanOrEqual(0);
          expect(m.score).toBeLessThanOrEqual(100);
        }
        // Reflexive: a record always finds itself.
        expect(
          matchPatient(
            { familyName: cf, givenName: cg, dateOfBirth: cd },
            { familyName: cf, givenName: cg, dateOfBirth: cd, postcodes: [] },
          ) !== null ||
            nameKey(cf) === '' ||
            nameKey(cg) === '',
        ).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('matching a patient when the date of birth is uncertain or the family name unknown', () => {
  const nia: PatientMatchCandidate = {
    familyName: 'Okafor',
    givenName: 'Nia',
    dateOfBirth: '1980-05-03',
    postcodes: ['LS1 4AP'],
  };
  const twinAtSamePostcode: PatientMatchCandidate = { ...nia, givenName: 'Ada' };

  it('a date with day and month swapped finds the patient, flagged and ranked below an exact one', () => {
    const swapped = matchPatient({ familyName: 'Okafor', dateOfBirth: '1980-03-05' }, nia)!;
    const exact = matchPatient({ familyName: 'Okafor', dateOfBirth: '1980-05-03' }, nia)!;
    expect(swapped).toMatchObject({ dateOfBirth: 'day_month_swapped', familyName: 'exact' });
    expect(exact.dateOfBirth).toBe('exact');
    expect(exact.score - swapped.score).toBe(20);
    expect(matchDateOfBirth('1980-03-05', '1980-05-03')).toBe('day_month_swapped');
    // 13 cannot be a month: no swap to try; equal day and month are the same date either way.
    expect(matchDateOfBirth('1980-05-13', '1980-13-05')).toBeNull();
    expect(matchDateOfBirth('1980-05-05', '1980-05-05')).toBe('exact');
  });

  it('a year on its own finds everyone of that name born that year, and nobody of another year', () => {
    expect(matchPatient({ familyName: 'okafor', dateOfBirth: '1980' }, nia)).toMatchObject({
      dateOfBirth: 'year',
      familyName: 'exact',
    });
    expect(matchPatient({ familyName: 'okafor', dateOfBirth: '1981' }, nia)).toBeNull();
    expect(matchDateOfBirth('1980', '1980-12-31')).toBe('year');
    expect(matchDateOfBirth('1980', '19800-01-01')).toBeNull();
  });

  it('without a family name: full date of birth and a matching postcode are both needed', () => {
    expect(matchPatient({ dateOfBirth: '1980-05-03', postcode: 'ls14ap' }, nia)).toMatchObject({
      dateOfBirth: 'exact',
      familyName: 'not_given',
      postcode: 'exact',
    });
    expect(matchPatient({ dateOfBirth: '1980-05-03', postcode: 'LS1 4AQ' }, nia)?.postcode).toBe('typo');
    // Another postcode, no postcode, or only a year: too little to pick a person.
    expect(matchPatient({ dateOfBirth: '1980-05-03', postcode: 'M1 1AE' }, nia)).toBeNull();
    expect(matchPatient({ dateOfBirth: '1980-05-03' }, nia)).toBeNull();
    expect(matchPatient({ dateOfBirth: '1980', postcode: 'LS1 4AP' }, nia)).toBeNull();
    // Twins at one postcode both come back; a given name, when typed, tells them apart.
    expect(
      matchPatient({ dateOfBirth: '1980-05-03', postcode: 'LS1 4AP' }, twinAtSamePostcode),
    ).not.toBeNull();
    expect(
      matchPatient({ givenName: 'Nia', dateOfBirth: '1980-05-03', postcode: 'LS1 4AP' }, twinAtSamePostcode),
    ).toBeNull();
  });
});
