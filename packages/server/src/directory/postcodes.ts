import { Readable } from 'node:stream';
import { sql } from 'kysely';
import { DirectoryFileError, type DirectoryFileProblem } from '@holdfast/core/directory/files';
import type { Store } from '../store/store.ts';

/**
 * Postcodes to places: a node-local reference table (postcode → latitude, longitude), not ledger
 * facts: the ONS Postcode Directory has about 2.7 million rows and is the same for every provider,
 * so each node imports the file itself (`holdfast postcodes import FILE`, or the admin route for a
 * small regional file). The table is created by store migration 6.
 *
 * Files are CSV in the column layout of the ONS Postcode Directory: a header row, then one row per
 * postcode. The columns read are `pcds` (the postcode with one space; `pcd`, `pcd2` or `postcode`
 * are taken when it is absent), `lat` (or `latitude`) and `long` (or `longitude`); every other
 * column is ignored. Fields may be quoted ("AB1 0AA"); the ONS file has no commas or line breaks
 * inside fields, so rows are split by a small reader of its own rather than a general CSV parser,
 * which would spend most of a full import's minute. A row the ONS gives no place (latitude 99.999999) is skipped and counted. A
 * file is taken whole or not at all: a bad row refuses it, naming the line and the field, and the
 * table is as it was. Rows are streamed and written in batches inside one transaction, so memory
 * stays flat whatever the file's size.
 */

export interface PostcodePlace {
  postcode: string;
  latitude: number;
  longitude: number;
}

export interface PostcodeImportResult {
  rows: number;
  imported: number;
  /** Rows the ONS gives no place for (terminated or never grid-referenced postcodes). */
  withoutPlace: number;
  ms: number;
}

const POSTCODE_COLUMNS = ['pcds', 'pcd', 'pcd2', 'postcode'];
const LATITUDE_COLUMNS = ['lat', 'latitude'];
const LONGITUDE_COLUMNS = ['long', 'longitude', 'lng', 'lon'];
const UK_POSTCODE = /^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$/;
/** The ONS's "no grid reference" latitude. */
const NO_PLACE_LATITUDE = 99.999999;
const BATCH = 5_000;
/** Stop reading a refused file after this many problems: they are enough to act on. */
const MAX_PROBLEMS = 20;

/** The postcode in the one form the table keys on: capitals, one space before the inward code. */
export function postcodeKey(text: string): string | null {
  const compact = text.replace(/\s+/g, '').toUpperCase();
  if (!UK_POSTCODE.test(compact)) return null;
  return `${compact.slice(0, -3)} ${compact.slice(-3)}`;
}

function columnIndex(header: readonly string[], names: readonly string[]): number {
  for (const name of names) {
    const i = header.indexOf(name);
    if (i >= 0) return i;
  }
  return -1;
}

class CsvLineError extends Error {}

/** One CSV line as fields: plain, or in double quotes (with "" for a quote inside). */
export function csvFields(line: string): string[] {
  if (!line.includes('"')) return line.split(',');
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let value = '';
      i += 1;
      for (;;) {
        const quote = line.indexOf('"', i);
        if (quote < 0) throw new CsvLineError('has a quote that is never closed');
        value += line.slice(i, quote);
        if (line[quote + 1] === '"') {
          value += '"';
          i = quote + 2;
        } else {
          i = quote + 1;
          break;
        }
      }
      fields.push(value);
      if (i < line.length && line[i] !== ',') throw new CsvLineError('has text after a closing quote');
    } else {
      const comma = line.indexOf(',', i);
      fields.push(line.slice(i, comma < 0 ? line.length : comma));
      i = comma < 0 ? line.length : comma;
    }
    if (i >= line.length) return fields;
    i += 1; // past the comma
    if (i === line.length) {
      fields.push('');
      return fields;
    }
  }
}

/** A stream's lines, a chunk's worth at a time (a BOM dropped, CRLF read). */
async function* csvLines(input: Readable): AsyncGenerator<string[]> {
  let rest = '';
  let first = true;
  input.setEncoding('utf8');
  for await (const chunk of input as AsyncIterable<string>) {
    let text = rest + chunk;
    if (first) {
      text = text.replace(/^\uFEFF/, '');
      first = false;
    }
    const lines = text.split('\n');
    rest = lines.pop()!;
    yield lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  }
  if (rest !== '') yield [rest.endsWith('\r') ? rest.slice(0, -1) : rest];
}

export class PostcodeStore {
  constructor(private readonly store: Store) {}

  /** The place of a postcode, or null when the table does not hold it. */
  async locate(postcode: string): Promise<PostcodePlace | null> {
    const key = postcodeKey(postcode);
    if (!key) return null;
    const row = await sql<{ latitude: number; longitude: number }>`
      select latitude, longitude from postcodes where postcode = ${key}`.execute(this.store.db);
    const place = row.rows[0];
    return place
      ? { postcode: key, latitude: Number(place.latitude), longitude: Number(place.longitude) }
      : null;
  }

  async count(): Promise<number> {
    const r = await sql<{ n: number | string }>`select count(*) as n from postcodes`.execute(this.store.db);
    return Number(r.rows[0]?.n ?? 0);
  }

  /** Imports an ONS-layout CSV (a stream or the whole text); all or nothing. */
  async import(source: Readable | string): Promise<PostcodeImportResult> {
    const started = performance.now();
    const input = typeof source === 'string' ? Readable.from([source]) : source;
    const rows = this.validRows(csvLines(input));
    const counts =
      this.store.dialect === 'sqlite' ? await this.writeSqlite(rows) : await this.writePostgres(rows);
    return { ...counts, ms: Math.round(performance.now() - started) };
  }

  /**
   * The file's rows as batches of places, checked as they stream past. Throws DirectoryFileError
   * (line and field) when a row is bad, which rolls the writer's transaction back.
   */
  private async *validRows(
    lines: AsyncIterable<string[]>,
  ): AsyncGenerator<{ batch: PostcodePlace[]; rows: number; withoutPlace: number }> {
    let line = 0;
    let header: string[] | null = null;
    let columns = { postcode: -1, latitude: -1, longitude: -1 };
    const problems: DirectoryFileProblem[] = [];
    let batch: PostcodePlace[] = [];
    let rows = 0;
    let withoutPlace = 0;
    try {
      reading: for await (const chunk of lines)
        for (const text of chunk) {
          line += 1;
          if (text.trim() === '') continue;
          const record = csvFields(text);
          if (!header) {
            header = record.map((h) => h.trim().toLowerCase());
            columns = {
              postcode: columnIndex(header, POSTCODE_COLUMNS),
              latitude: columnIndex(header, LATITUDE_COLUMNS),
              longitude: columnIndex(header, LONGITUDE_COLUMNS),
            };
            const missing = (
              [
                ['pcds', columns.postcode],
                ['lat', columns.latitude],
                ['long', columns.longitude],
              ] as const
            ).filter(([, i]) => i < 0);
            if (missing.length > 0)
              throw new DirectoryFileError(
                missing.map(([field]) => ({
                  line: 1,
                  field,
                  message: 'this column is missing (an ONS Postcode Directory header is expected)',
                })),
              );
            continue;
          }
          rows += 1;
          const postcode = postcodeKey(record[columns.postcode] ?? '');
          const latitudeText = record[columns.latitude] ?? '';
          const longitudeText = record[columns.longitude] ?? '';
          const latitude = Number(latitudeText);
          const longitude = Number(longitudeText);
          if (!postcode) problems.push({ line, field: 'pcds', message: 'is not a UK postcode' });
          else if (latitudeText === '' || !Number.isFinite(latitude))
            problems.push({ line, field: 'lat', message: 'must be a number' });
          else if (latitude === NO_PLACE_LATITUDE) withoutPlace += 1;
          else if (latitude < 49 || latitude > 61)
            problems.push({ line, field: 'lat', message: 'must be a UK latitude (49 to 61)' });
          else if (longitudeText === '' || !Number.isFinite(longitude) || longitude < -9 || longitude > 2.1)
            problems.push({ line, field: 'long', message: 'must be a UK longitude (-9 to 2.1)' });
          else batch.push({ postcode, latitude, longitude });
          if (problems.length >= MAX_PROBLEMS) break reading;
          if (batch.length >= BATCH && problems.length === 0) {
            yield { batch, rows, withoutPlace };
            batch = [];
          }
        }
    } catch (error) {
      if (error instanceof DirectoryFileError) throw error;
      const at = (error as { lines?: number }).lines ?? line + 1;
      throw new DirectoryFileError([
        { line: at, field: 'row', message: 'is not valid CSV (check quotes and the number of columns)' },
      ]);
    }
    if (!header) throw new DirectoryFileError([{ line: 1, field: 'file', message: 'is empty' }]);
    if (problems.length > 0) throw new DirectoryFileError(problems);
    yield { batch, rows, withoutPlace };
  }

  /**
   * SQLite: the store's one connection is held for the whole import (other queries wait, so none
   * runs inside this transaction), with one prepared statement for every row.
   */
  private async writeSqlite(
    batches: AsyncIterable<{ batch: PostcodePlace[]; rows: number; withoutPlace: number }>,
  ): Promise<Omit<PostcodeImportResult, 'ms'>> {
    const handle = this.store.sqliteHandle();
    if (!handle) throw new Error('no SQLite handle');
    return this.store.db.connection().execute(async () => {
      const insert = handle.prepare(
        'insert into postcodes (postcode, latitude, longitude) values (?, ?, ?) on conflict (postcode) do update set latitude = excluded.latitude, longitude = excluded.longitude',
      );
      const writeBatch = handle.transaction((batch: PostcodePlace[]) => {
        for (const p of batch) insert.run(p.postcode, p.latitude, p.longitude);
      });
      // A national file is larger than SQLite's default page cache (2 MB): its rows, written in one
      // transaction, would spill and re-read the growing table's pages. 64 MiB holds the upper
      // levels of the table for the import; the usual cache comes back after it.
      const cacheSize = handle.pragma('cache_size', { simple: true }) as number;
      handle.pragma('cache_size = -65536');
      handle.exec('begin immediate');
      let last = { rows: 0, withoutPlace: 0 };
      let imported = 0;
      try {
        for await (const { batch, rows, withoutPlace } of batches) {
          writeBatch(batch);
          imported += batch.length;
          last = { rows, withoutPlace };
        }
        handle.exec('commit');
      } catch (error) {
        handle.exec('rollback');
        throw error;
      } finally {
        handle.pragma(`cache_size = ${Number(cacheSize)}`);
      }
      return { rows: last.rows, imported, withoutPlace: last.withoutPlace };
    });
  }

  /** PostgreSQL: one transaction; each batch one statement over arrays (unnest), a few params each. */
  private async writePostgres(
    batches: AsyncIterable<{ batch: PostcodePlace[]; rows: number; withoutPlace: number }>,
  ): Promise<Omit<PostcodeImportResult, 'ms'>> {
    return this.store.transaction(async (trx) => {
      let last = { rows: 0, withoutPlace: 0 };
      let imported = 0;
      for await (const { batch, rows, withoutPlace } of batches) {
        // A postcode twice in one statement cannot be upserted twice: the later row wins, as in SQLite.
        const unique = [...new Map(batch.map((p) => [p.postcode, p])).values()];
        if (unique.length > 0)
          await sql`insert into postcodes (postcode, latitude, longitude)
            select * from unnest(${unique.map((p) => p.postcode)}::text[], ${unique.map((p) => p.latitude)}::float8[], ${unique.map((p) => p.longitude)}::float8[])
            on conflict (postcode) do update set latitude = excluded.latitude, longitude = excluded.longitude`.execute(
            trx,
          );
        imported += batch.length;
        last = { rows, withoutPlace };
      }
      return { rows: last.rows, imported, withoutPlace: last.withoutPlace };
    });
  }
}
