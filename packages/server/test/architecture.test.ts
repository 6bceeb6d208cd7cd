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
});
