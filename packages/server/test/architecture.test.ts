import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SOURCES = ['packages/core/src', 'packages/server/src', 'packages/web/src'];

/** Every .ts and .tsx file under a folder. */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.tsx?$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/**
 * The relative imports a file needs at run time: `import type` and `export type` are left out, since
 * the compiler erases them and they cannot make a cycle of module loading.
 */
function runtimeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(
    /^\s*(?:import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?'(\.{1,2}\/[^']+)'/gm,
  )) {
    if (m[1]) continue;
    const target = resolve(dirname(file), m[2]!);
    const candidates = [target, `${target}.ts`, `${target}.tsx`, join(target, 'index.ts')];
    const hit = candidates.find((c) => /\.tsx?$/.test(c) && existsSync(c));
    if (hit) found.push(hit);
  }
  return found;
}

/** The strongly connected components of more than one node (Tarjan): each is a cycle of imports. */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

const SERVER = join(ROOT, 'packages/server/src');
/**
 * Folders whose tables every module may use: the store's own (the ledger, sessions, sync state) and
 * the projection framework's. Everything else belongs to the module that creates it.
 */
const SHARED_TABLE_OWNERS = new Set(['store', 'projections']);

/** The module (top folder under packages/server/src) a file belongs to; a file at the top is its own. */
function moduleOf(file: string): string {
  const [top, ...rest] = relative(SERVER, file).split('/');
  return rest.length > 0 ? top! : `(${top})`;
}

/** Each table and the module whose projection creates it (`create table x`). */
function tableOwners(files: readonly string[]): Map<string, string> {
  const owners = new Map<string, string>();
  for (const file of files)
    for (const m of readFileSync(file, 'utf8').matchAll(/\bcreate table (?:if not exists )?([a-z_]+)/gi))
      if (!owners.has(m[1]!.toLowerCase())) owners.set(m[1]!.toLowerCase(), moduleOf(file));
  return owners;
}

/**
 * The tables a file's code queries: Kysely's builders (selectFrom, updateTable, insertInto,
 * deleteFrom, joins) and raw SQL in `sql` templates (from, join, update, into).
 */
function tablesQueried(text: string): string[] {
  const found = [
    ...text.matchAll(
      /\.(?:selectFrom|updateTable|insertInto|deleteFrom|innerJoin|leftJoin)\(\s*['"]([a-z_]+)/g,
    ),
  ].map((m) => m[1]!);
  for (const template of text.matchAll(/\bsql(?:<[^`]*?>)?`([^`]*)`/g))
    for (const m of template[1]!.matchAll(/\b(?:from|join|update|into)\s+([a-z_]+)/gi))
      found.push(m[1]!.toLowerCase());
  return found;
}

/** `module file → table (owner)` for every query of a table another module owns. */
function foreignTableQueries(files: readonly string[]): string[] {
  const owners = tableOwners(files);
  const found: string[] = [];
  for (const file of files) {
    const mine = moduleOf(file);
    for (const table of new Set(tablesQueried(readFileSync(file, 'utf8')))) {
      const owner = owners.get(table);
      if (owner && owner !== mine && !SHARED_TABLE_OWNERS.has(owner))
        found.push(`${relative(SERVER, file)} → ${table} (${owner})`);
    }
  }
  return found;
}

describe('the shape of the code', () => {
  it.each(SOURCES)('%s has no import cycle', (folder) => {
    const files = sourceFiles(join(ROOT, folder));
    expect(files.length).toBeGreaterThan(20);
    const graph = new Map(files.map((f) => [f, runtimeImports(f)]));
    expect(cycles(graph).map((c) => c.map((f) => relative(ROOT, f)))).toEqual([]);
  });

  it('the check can fail: it reads real imports and finds a cycle in a graph that has one', () => {
    const sync = join(ROOT, 'packages/server/src/sync');
    expect(runtimeImports(join(sync, 'routes.ts'))).toContain(join(sync, 'enrolment.ts'));
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    expect(cycles(graph)).toEqual([['a', 'b', 'c']]);
  });

  it('no module queries another module’s tables: it calls that module’s reads or service', () => {
    const files = sourceFiles(SERVER);
    expect(tableOwners(files).get('cases')).toBe('cases');
    expect(tableOwners(files).get('patients')).toBe('patients');
    expect(tableOwners(files).size).toBeGreaterThan(30);
    expect(foreignTableQueries(files)).toEqual([]);
  });

  it('the check can fail: it finds Kysely and raw-SQL queries of tables by name', () => {
    expect(
      tablesQueried(
        "casesDb(trx)\n  .selectFrom('cases')\n  .innerJoin('patients', 'x', 'y');\nsql`select 1 from users u join passkeys p on true`",
      ),
    ).toEqual(['cases', 'patients', 'users', 'passkeys']);
    expect(moduleOf(join(SERVER, 'reports/iuc-adc.ts'))).toBe('reports');
  });
});
