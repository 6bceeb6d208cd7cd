import { describe, expect, it } from 'vitest';
import {
  DirectoryFileError,
  directoryToCsv,
  directoryToJson,
  parseDirectoryCsv,
  parseDirectoryJson,
  type DirectoryFileProblem,
} from '../src/directory/files.ts';
// The plain-words messages, as wherever the core package is loaded.
import '../src/plain-errors.ts';
import { SERVICES } from './directory-fixtures.ts';

// The fixtures with ids as files carry them (UUIDs), and without their live capacity: what a file holds.
const WITH_IDS = SERVICES.map((s, i) => ({
  ...s,
  serviceId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
}));
const DEFINITIONS = WITH_IDS.map(({ capacity: _capacity, ...rest }) => rest);

function refusal(read: () => unknown): DirectoryFileProblem[] {
  try {
    read();
  } catch (error) {
    if (error instanceof DirectoryFileError) return error.problems;
    throw error;
  }
  throw new Error('the file was not refused');
}

describe('Directory files', () => {
  it('CSV round-trips every service, opening times and exceptions included', () => {
    const csv = directoryToCsv(DEFINITIONS);
    expect(csv.split('\n')[0]).toMatch(
      /^serviceId,name,odsCode,type,address,postcode,latitude,longitude,phone,/,
    );
    expect(parseDirectoryCsv(csv)).toEqual(DEFINITIONS);
    expect(csv).toContain('2026-12-09=closed (Refurbishment)');
  });

  it('JSON round-trips, and a capacity in the file is not imported', () => {
    expect(parseDirectoryJson(directoryToJson(DEFINITIONS))).toEqual(DEFINITIONS);
    expect(parseDirectoryJson(JSON.stringify({ services: WITH_IDS }))).toEqual(DEFINITIONS);
  });

  it('a CSV with a bad row is refused whole, naming the line and the field of every bad row', () => {
    const lines = directoryToCsv(DEFINITIONS).trimEnd().split('\n');
    // Line 3 (the second service): a latitude that is not a number; line 5: an unknown type.
    lines[2] = lines[2]!.replace(/,53\.8\d*,/, ',fifty-three,');
    lines[4] = lines[4]!.replace(',community_pharmacy,', ',chemist,');
    const problems = refusal(() => parseDirectoryCsv(lines.join('\n')));
    expect(problems).toEqual([
      { line: 3, field: 'latitude', message: 'must be a number' },
      { line: 5, field: 'type', message: expect.stringMatching(/^must be one of/) as unknown as string },
    ]);
  });

  it('bad opening times name their column', () => {
    const lines = directoryToCsv(DEFINITIONS).trimEnd().split('\n');
    lines[1] = lines[1]!.replace(/,true,closed,/, ',false,8am-10pm,');
    lines[2] = lines[2]!.replace(
      /08:00-22:00,08:00-22:00,08:00-22:00/,
      '08:00-22:00,25:00-22:00,08:00-22:00',
    );
    const problems = refusal(() => parseDirectoryCsv(lines.join('\n')));
    expect(problems).toEqual([
      { line: 2, field: 'mon', message: 'must be sessions as HH:MM-HH:MM separated by commas, or "closed"' },
      { line: 3, field: 'tue', message: 'must be a time of day as HH:MM' },
    ]);
  });

  it('the same service twice, a missing column and an unknown one are refused', () => {
    const csv = directoryToCsv([DEFINITIONS[0]!, DEFINITIONS[0]!]);
    expect(refusal(() => parseDirectoryCsv(csv))).toEqual([
      { line: 3, field: 'serviceId', message: 'the same service id is on line 2' },
    ]);
    const [header, ...rest] = directoryToCsv(DEFINITIONS).split('\n');
    expect(refusal(() => parseDirectoryCsv([header!.replace('odsCode', 'ods'), ...rest].join('\n')))).toEqual(
      [
        { line: 1, field: 'odsCode', message: 'this column is missing' },
        { line: 1, field: 'ods', message: 'is not a column of directory files' },
      ],
    );
  });

  it('a JSON service with a bad field is refused with its place in the list and the field path', () => {
    const bad = JSON.parse(JSON.stringify(DEFINITIONS)) as typeof DEFINITIONS;
    (bad[1] as { dispositions: unknown }).dispositions = [];
    (bad[3]!.openingTimes.weekly.mon[0] as { closes: string }).closes = 'late';
    expect(refusal(() => parseDirectoryJson(JSON.stringify({ services: bad })))).toEqual([
      { line: 2, field: 'dispositions', message: 'must list at least one Dx code' },
      {
        line: 4,
        field: 'openingTimes.weekly.mon.0.closes',
        message: 'must be a time of day as HH:MM (24:00 for midnight)',
      },
    ]);
    expect(refusal(() => parseDirectoryJson('{not json'))).toEqual([
      { line: 1, field: 'file', message: 'is not valid JSON' },
    ]);
  });
});
