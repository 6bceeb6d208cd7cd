import type {
  MultiChoiceCondition,
  MultiChoiceNode,
  NumericNode,
  ProtocolNode,
  QuestionNode,
  SingleChoiceNode,
} from './schema.ts';

/**
 * The branches of a question, worked out exactly: which can be taken, by what answer, and which can
 * never be taken. The checker uses this for reachability; tests and simulators use the example
 * answers to walk every branch.
 */

export type AnswerValue = string | readonly string[] | number;

export interface QuestionBranch {
  /** Where in the node the branch is declared, as a field path: `options.2`, `rules.0`, `defaultNext`, `ranges.1`. */
  path: string;
  next: string;
  /** An answer that takes this branch. */
  example: AnswerValue;
  /** Relative weight for simulation (1 when the protocol gives none). */
  simWeight: number;
  /** Plain words for messages: `option "Yes"`, `rule 1`, `38–39.9 °C`. */
  describe: string;
}

export interface QuestionBranchAnalysis {
  /** Branches some answer takes. */
  branches: QuestionBranch[];
  /** Branches declared but never taken, because no answer satisfies them or earlier ones take every such answer. */
  neverTaken: { path: string; next: string; describe: string }[];
  /** Numeric answers within min–max that no range holds, described as intervals. */
  uncovered: string[];
}

export function analyseQuestion(node: QuestionNode): QuestionBranchAnalysis {
  switch (node.type) {
    case 'single_choice':
      return analyseSingleChoice(node);
    case 'multi_choice':
      return analyseMultiChoice(node);
    case 'numeric':
      return analyseNumeric(node);
  }
}

/** Every node a node points to, taken or not, with the field path of the pointer. */
export function declaredPointers(node: ProtocolNode): { path: string; next: string }[] {
  switch (node.type) {
    case 'single_choice':
      return node.options.map((o, i) => ({ path: `options.${i}.next`, next: o.next }));
    case 'multi_choice':
      return [
        ...node.rules.map((r, i) => ({ path: `rules.${i}.next`, next: r.next })),
        { path: 'defaultNext', next: node.defaultNext },
      ];
    case 'numeric':
      return node.ranges.map((r, i) => ({ path: `ranges.${i}.next`, next: r.next }));
    case 'disposition':
      return [];
  }
}

function analyseSingleChoice(node: SingleChoiceNode): QuestionBranchAnalysis {
  return {
    branches: node.options.map((o, i) => ({
      path: `options.${i}`,
      next: o.next,
      example: o.id,
      simWeight: o.simWeight ?? 1,
      describe: `option "${o.label}"`,
    })),
    neverTaken: [],
    uncovered: [],
  };
}

export function conditionHolds(when: MultiChoiceCondition, selected: ReadonlySet<string>): boolean {
  if (when.anyOf && !when.anyOf.some((id) => selected.has(id))) return false;
  if (when.allOf && !when.allOf.every((id) => selected.has(id))) return false;
  if (when.none?.some((id) => selected.has(id))) return false;
  return true;
}

/** The rule index an answer takes, or -1 for `defaultNext`. */
export function multiChoiceRuleIndex(node: MultiChoiceNode, selected: ReadonlySet<string>): number {
  return node.rules.findIndex((rule) => conditionHolds(rule.when, selected));
}

function analyseMultiChoice(node: MultiChoiceNode): QuestionBranchAnalysis {
  // Exact: try every combination of options (at most 2^12, bounded by the schema). Masks are tried
  // by number of options selected, then by option order, so each example is a smallest answer.
  const ids = node.options.map((o) => o.id);
  const masks = Array.from({ length: 2 ** ids.length }, (_, m) => m).sort(
    (a, b) => popcount(a) - popcount(b) || a - b,
  );
  const examples = new Map<number, string[]>();
  for (const mask of masks) {
    const selected = ids.filter((_, i) => (mask >> i) & 1);
    const rule = multiChoiceRuleIndex(node, new Set(selected));
    if (!examples.has(rule)) examples.set(rule, selected);
    if (examples.size === node.rules.length + 1) break;
  }
  const analysis: QuestionBranchAnalysis = { branches: [], neverTaken: [], uncovered: [] };
  const add = (
    index: number,
    path: string,
    next: string,
    simWeight: number | undefined,
    describe: string,
  ) => {
    const example = examples.get(index);
    if (example) analysis.branches.push({ path, next, example, simWeight: simWeight ?? 1, describe });
    else analysis.neverTaken.push({ path, next, describe });
  };
  node.rules.forEach((rule, i) => add(i, `rules.${i}`, rule.next, rule.simWeight, `rule ${i + 1}`));
  add(-1, 'defaultNext', node.defaultNext, node.defaultSimWeight, 'the default branch');
  return analysis;
}

function popcount(n: number): number {
  let count = 0;
  for (let m = n; m; m &= m - 1) count++;
  return count;
}

/** A set of numbers: a union of disjoint intervals, each end open or closed. */
interface Interval {
  lo: number;
  hi: number;
  loOpen: boolean;
  hiOpen: boolean;
}

function isEmpty(i: Interval): boolean {
  return i.lo > i.hi || (i.lo === i.hi && (i.loOpen || i.hiOpen));
}

/** `set` minus the closed interval [a, b]; for whole numbers the ends step by one instead of opening. */
function subtract(set: Interval[], a: number, b: number, integer: boolean): Interval[] {
  const out: Interval[] = [];
  for (const i of set) {
    const left: Interval = integer
      ? { lo: i.lo, loOpen: false, hi: Math.min(i.hi, a - 1), hiOpen: false }
      : { lo: i.lo, loOpen: i.loOpen, hi: Math.min(i.hi, a), hiOpen: i.hi < a ? i.hiOpen : true };
    const right: Interval = integer
      ? { lo: Math.max(i.lo, b + 1), loOpen: false, hi: i.hi, hiOpen: false }
      : { lo: Math.max(i.lo, b), loOpen: i.lo > b ? i.loOpen : true, hi: i.hi, hiOpen: i.hiOpen };
    if (!isEmpty(left)) out.push(left);
    if (!isEmpty(right)) out.push(right);
  }
  return out;
}

/** `set` ∩ [a, b]. */
function intersect(set: Interval[], a: number, b: number): Interval[] {
  return set
    .map((i) => ({
      lo: i.lo < a ? a : i.lo,
      loOpen: i.lo < a ? false : i.loOpen,
      hi: i.hi > b ? b : i.hi,
      hiOpen: i.hi > b ? false : i.hiOpen,
    }))
    .filter((i) => !isEmpty(i));
}

function exampleOf(i: Interval): number {
  if (!i.loOpen) return i.lo;
  if (!i.hiOpen) return i.hi;
  return (i.lo + i.hi) / 2;
}

function describeSet(set: Interval[], unit: string): string {
  return set
    .map((i) =>
      i.lo === i.hi && !i.loOpen && !i.hiOpen
        ? `${i.lo} ${unit}`
        : `${i.loOpen ? 'above' : 'from'} ${i.lo} ${i.hiOpen ? 'to below' : 'to'} ${i.hi} ${unit}`,
    )
    .join(', ');
}

function numericDomain(node: NumericNode): Interval[] {
  const integer = node.integer === true;
  const lo = integer ? Math.ceil(node.min) : node.min;
  const hi = integer ? Math.floor(node.max) : node.max;
  const domain = { lo, hi, loOpen: false, hiOpen: false };
  return isEmpty(domain) ? [] : [domain];
}

function rangeBounds(range: NumericNode['ranges'][number], integer: boolean): [number, number] {
  const a = range.min ?? -Infinity;
  const b = range.max ?? Infinity;
  return integer ? [Math.ceil(a), Math.floor(b)] : [a, b];
}

/** The range index that holds `value`, or -1. Both ends inclusive; the first range wins. */
export function numericRangeIndex(node: NumericNode, value: number): number {
  return node.ranges.findIndex(
    (r) => (r.min === undefined || value >= r.min) && (r.max === undefined || value <= r.max),
  );
}

function analyseNumeric(node: NumericNode): QuestionBranchAnalysis {
  const integer = node.integer === true;
  let remaining = numericDomain(node);
  const analysis: QuestionBranchAnalysis = { branches: [], neverTaken: [], uncovered: [] };
  node.ranges.forEach((range, i) => {
    const [a, b] = rangeBounds(range, integer);
    const taken = a > b ? [] : intersect(remaining, a, b);
    const describe = `range ${i + 1} (${describeRange(range, node.unit)})`;
    const first = taken[0];
    if (first)
      analysis.branches.push({
        path: `ranges.${i}`,
        next: range.next,
        example: exampleOf(first),
        simWeight: range.simWeight ?? 1,
        describe,
      });
    else analysis.neverTaken.push({ path: `ranges.${i}`, next: range.next, describe });
    if (a <= b) remaining = subtract(remaining, a, b, integer);
  });
  if (remaining.length > 0) analysis.uncovered.push(describeSet(remaining, node.unit));
  return analysis;
}

function describeRange(range: NumericNode['ranges'][number], unit: string): string {
  if (range.min === undefined && range.max === undefined) return `any value`;
  if (range.min === undefined) return `up to ${range.max} ${unit}`;
  if (range.max === undefined) return `${range.min} ${unit} or more`;
  return `${range.min}–${range.max} ${unit}`;
}
