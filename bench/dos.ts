/**
 * `npm run bench:dos` (and `-- --quick`): the Directory of Services at national scale.
 *
 * 1. Generates 10,000 made-up services spread over Great Britain (several types, opening patterns
 *    with overnight sessions, bank-holiday hours and dated exceptions, a share with capacity set)
 *    and 2.7 million made-up postcodes in the ONS Postcode Directory's column layout.
 * 2. Imports the postcodes with the node's importer (streamed, batched, one transaction) into a
 *    SQLite store and a PostgreSQL store, reporting rows/s and the process's peak resident memory.
 * 3. Times `searchDirectory` (pure core: every service ranked or left out with its reasons) over
 *    many searches from random postcodes at random times, beside a plain linear scan computing the
 *    same great-circle distances in the same run.
 *
 * Last line: {"bench":"dos","services":…,"p50_ms":…,"p99_ms":…,"linear_scan_p99_ms":…}.
 */
import { createWriteStream, createReadStream } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import {
  greatCircleKm,
  searchDirectory,
  WEEKDAYS,
  type DirectoryService,
  type OpeningSession,
  type OpeningTimes,
  type ServiceType,
} from '../packages/core/src/index.ts';
import { PostcodeStore } from '../packages/server/src/directory/postcodes.ts';
import { Store } from '../packages/server/src/store/store.ts';
import {
  describeMachine,
  formatTable,
  machineInfo,
  note,
  onExit,
  parseBenchArgs,
  round,
  startBenchPostgres,
  tempDir,
} from './support.ts';

const args = parseBenchArgs();
const SERVICES = 10_000;
const POSTCODES = args.quick ? 270_000 : 2_700_000;
const SEARCHES = args.quick ? 300 : 2_000;

/** A small deterministic generator (mulberry32), so every run searches the same made-up country. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rnd = random(20261205);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

/** A point on the British mainland's rough extent. */
function place(): { latitude: number; longitude: number } {
  return { latitude: 50.1 + rnd() * 8.4, longitude: -5.5 + rnd() * 7.2 };
}

const TYPES: readonly ServiceType[] = [
  'emergency_department',
  'urgent_treatment_centre',
  'same_day_emergency_care',
  'gp_out_of_hours_base',
  'gp_practice',
  'community_pharmacy',
  'dental',
  'mental_health_crisis',
];
const DX = ['Dx02', 'Dx03', 'Dx05', 'Dx06', 'Dx11', 'Dx12', 'Dx28', 'SAMPLE-ED-1H', 'SAMPLE-UTC-4H'];
const every = (s: OpeningSession[]) =>
  Object.fromEntries(WEEKDAYS.map((d) => [d, s])) as OpeningTimes['weekly'];
const PATTERNS: OpeningTimes[] = [
  { alwaysOpen: true, weekly: every([]), bankHolidays: null, exceptions: [] },
  {
    alwaysOpen: false,
    weekly: every([{ opens: '08:00', closes: '22:00' }]),
    bankHolidays: [{ opens: '10:00', closes: '16:00' }],
    exceptions: [],
  },
  {
    alwaysOpen: false,
    weekly: every([{ opens: '18:30', closes: '08:00' }]),
    bankHolidays: null,
    exceptions: [],
  },
  {
    alwaysOpen: false,
    weekly: {
      ...every([{ opens: '09:00', closes: '17:30' }]),
      sat: [{ opens: '09:00', closes: '13:00' }],
      sun: [],
    },
    bankHolidays: [],
    exceptions: [
      { date: '2026-12-24', sessions: [{ opens: '09:00', closes: '12:00' }], note: 'Christmas Eve' },
    ],
  },
  {
    alwaysOpen: false,
    weekly: every([
      { opens: '08:00', closes: '12:00' },
      { opens: '14:00', closes: '20:00' },
    ]),
    bankHolidays: null,
    exceptions: [],
  },
];

function generateServices(): DirectoryService[] {
  return Array.from({ length: SERVICES }, (_, i) => {
    const at = place();
    const capacity = rnd();
    return {
      serviceId: `svc-${i}`,
      name: `Made-up service ${i}`,
      odsCode: `X${String(i).padStart(5, '0')}`,
      type: pick(TYPES),
      address: [`${i} Made-up Road`],
      postcode: 'ZZ1 1ZZ',
      ...at,
      phone: null,
      // Each service its own copy, as services read from the store are.
      openingTimes: structuredClone(pick(PATTERNS)),
      dispositions: DX.filter(() => rnd() < 0.4),
      symptomGroups: rnd() < 0.8 ? [] : ['chest-pain', 'mental-health-crisis'],
      ageRange: { minYears: rnd() < 0.9 ? 0 : 16, maxYears: null },
      sexes: [],
      referral: { kind: 'walk_in' },
      booking: null,
      capacity:
        capacity < 0.6
          ? null
          : {
              status: capacity < 0.8 ? 'green' : capacity < 0.95 ? 'amber' : 'red',
              setAtMs: 0,
              setBy: 'user:bench',
            },
      notClinicallyValidated: true,
    } satisfies DirectoryService;
  });
}

/** Postcode number i as a made-up postcode: two letters, a digit or two, a digit and two letters. */
function postcodeOf(i: number): string {
  const L = 'ABDEFGHJLNPQRSTUWXYZ';
  const area = `${L[i % 20]}${L[Math.floor(i / 20) % 20]}`;
  const district = Math.floor(i / 400) % 100;
  const sector = Math.floor(i / 40_000) % 10;
  const unit = `${L[Math.floor(i / 400_000) % 20]}${L[Math.floor(i / 8_000_000) % 20]}`;
  return `${area}${district} ${sector}${unit}`;
}

/** Writes the postcode file in the ONS Postcode Directory's layout (a subset of its columns). */
async function writePostcodeFile(file: string): Promise<{ postcodes: string[] }> {
  const out = createWriteStream(file);
  const sample: string[] = [];
  out.write('pcd,pcd2,pcds,dointr,doterm,oscty,ctry,lat,long\n');
  for (let i = 0; i < POSTCODES; i++) {
    const pcds = postcodeOf(i);
    const at = place();
    if (i % 997 === 0) sample.push(pcds);
    const line = `"${pcds.replace(' ', '')}","${pcds}","${pcds}","199801","","E99999999","E92000001",${at.latitude.toFixed(6)},${at.longitude.toFixed(6)}\n`;
    if (!out.write(line)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return { postcodes: sample };
}

/** The process's peak resident memory while `fn` runs (sampled every 50 ms), in MB. */
async function withPeakRss<T>(
  fn: () => Promise<T>,
): Promise<{ value: T; peakRssMb: number; startRssMb: number }> {
  const startRss = process.memoryUsage.rss();
  let peak = startRss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 50);
  try {
    const value = await fn();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { value, peakRssMb: peak / 1e6, startRssMb: startRss / 1e6 };
  } finally {
    clearInterval(timer);
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const machine = machineInfo();
  const dir = tempDir('holdfast-bench-dos-');
  onExit(() => dir.remove());
  console.log(
    `Directory of Services benchmark${args.quick ? ' (--quick)' : ''}: ${describeMachine(machine)}`,
  );

  const services = generateServices();
  const file = join(dir.path, 'postcodes.csv');
  const written = performance.now();
  const { postcodes } = await writePostcodeFile(file);
  note(
    `wrote ${POSTCODES.toLocaleString('en-GB')} postcodes in ${((performance.now() - written) / 1000).toFixed(1)} s`,
  );

  // ---- postcode import, per store ----
  const imports: { store: string; rows: number; ms: number; peakRssMb: number; startRssMb: number }[] = [];
  const stores: {
    name: 'sqlite' | 'postgres';
    open: () => Promise<{ store: Store; close: () => Promise<void> }>;
  }[] = [
    {
      name: 'sqlite',
      open: async () => {
        const store = await Store.open({ dialect: 'sqlite', file: join(dir.path, 'holdfast.sqlite') });
        return { store, close: () => store.close() };
      },
    },
    {
      name: 'postgres',
      open: async () => {
        const pg = await startBenchPostgres();
        const db = await pg.createDatabase();
        const store = await Store.open({ dialect: 'postgres', connectionString: db.url });
        return {
          store,
          close: async () => {
            await store.close();
            await db.drop();
            pg.stop();
          },
        };
      },
    },
  ];
  let located: PostcodeStore | null = null;
  let locateTimes: number[] = [];
  for (const s of stores) {
    if (args.only && args.only !== s.name) continue;
    const { store, close } = await s.open();
    const postcodeStore = new PostcodeStore(store);
    global.gc?.();
    const { value, peakRssMb, startRssMb } = await withPeakRss(() =>
      postcodeStore.import(createReadStream(file)),
    );
    imports.push({ store: s.name, rows: value.imported, ms: value.ms, peakRssMb, startRssMb });
    note(
      `${s.name}: imported ${value.imported.toLocaleString('en-GB')} postcodes in ${(value.ms / 1000).toFixed(1)} s`,
    );
    if (s.name === 'sqlite' || !located) {
      located = postcodeStore;
      locateTimes = [];
      for (const pc of postcodes.slice(0, 500)) {
        const t0 = performance.now();
        if (!(await postcodeStore.locate(pc))) throw new Error(`postcode ${pc} not found after import`);
        locateTimes.push(performance.now() - t0);
      }
      locateTimes.sort((a, b) => a - b);
    }
    await close();
  }

  // ---- search ----
  const searchMs: number[] = [];
  const scanMs: number[] = [];
  let rankedTotal = 0;
  const from = Date.UTC(2026, 11, 1);
  for (let i = 0; i < SEARCHES + 50; i++) {
    const location = place();
    const query = {
      dxCode: pick(DX),
      symptomGroup: rnd() < 0.5 ? 'chest-pain' : null,
      ageYears: Math.floor(rnd() * 90),
      sex: pick(['male', 'female', 'unknown'] as const),
      location,
      maxDistanceKm: pick([10, 25, 50]),
      // Any minute of four weeks that take in Christmas and the bank holidays.
      fromMs: from + Math.floor(rnd() * 28 * 1440) * 60_000,
      withinMinutes: pick([60, 120, 240, 720, 1440]),
    };
    const t0 = performance.now();
    const result = searchDirectory(services, query);
    const t1 = performance.now();
    // The plain linear scan: the same distances, nothing else.
    let near = 0;
    for (const s of services) if (greatCircleKm(location, s) <= query.maxDistanceKm) near++;
    const t2 = performance.now();
    if (result.ranked.length + result.excluded.length !== services.length || near < result.ranked.length)
      throw new Error('the search lost a service');
    if (i < 50) continue; // warm-up
    rankedTotal += result.ranked.length;
    searchMs.push(t1 - t0);
    scanMs.push(t2 - t1);
  }
  searchMs.sort((a, b) => a - b);
  scanMs.sort((a, b) => a - b);

  console.log('');
  console.log(
    formatTable(
      ['postcode import', 'rows', 'seconds', 'rows/s', 'peak RSS MB (at start)'],
      imports.map((r) => [
        r.store,
        r.rows.toLocaleString('en-GB'),
        (r.ms / 1000).toFixed(1),
        Math.round(r.rows / (r.ms / 1000)).toLocaleString('en-GB'),
        `${Math.round(r.peakRssMb)} (${Math.round(r.startRssMb)})`,
      ]),
    ),
  );
  console.log('');
  console.log(
    formatTable(
      [
        `${SEARCHES} searches over ${SERVICES.toLocaleString('en-GB')} services`,
        'p50 ms',
        'p99 ms',
        'max ms',
      ],
      [
        [
          'searchDirectory (all reasons, ranked)',
          ...[50, 99].map((p) => percentile(searchMs, p).toFixed(2)),
          searchMs.at(-1)!.toFixed(2),
        ],
        [
          'linear scan, distances only',
          ...[50, 99].map((p) => percentile(scanMs, p).toFixed(2)),
          scanMs.at(-1)!.toFixed(2),
        ],
        [
          'postcode lookup (SQLite)',
          ...[50, 99].map((p) => percentile(locateTimes, p).toFixed(3)),
          (locateTimes.at(-1) ?? 0).toFixed(3),
        ],
      ],
    ),
  );
  note(`mean services offered per search: ${(rankedTotal / SEARCHES).toFixed(1)}`);
  console.log(
    JSON.stringify({
      bench: 'dos',
      services: SERVICES,
      p50_ms: round(percentile(searchMs, 50), 2),
      p99_ms: round(percentile(searchMs, 99), 2),
      linear_scan_p99_ms: round(percentile(scanMs, 99), 2),
      postcodes: POSTCODES,
      postcode_import: Object.fromEntries(
        imports.map((r) => [
          r.store,
          {
            rows_per_s: Math.round(r.rows / (r.ms / 1000)),
            seconds: round(r.ms / 1000, 1),
            peak_rss_mb: Math.round(r.peakRssMb),
          },
        ]),
      ),
      quick: args.quick,
      machine: { cpu: machine.cpu, cores: machine.cores, node: machine.node },
    }),
  );
}

await main();
process.exit(0);
