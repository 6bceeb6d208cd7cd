import { z } from 'zod';
import { ValidationError } from '../errors.ts';
import { zodIssuesToFieldIssues } from '../ledger/registry.ts';
import { AMBULANCE_CATEGORIES, TRIAGE_DISPOSITION_KINDS } from './dx-codes.ts';

/**
 * Triage protocols are data. A pack is a directory of JSON documents: one manifest (`kind: "pack"`),
 * one life-threatening module asked before every pathway (`kind: "life_threatening"`), and one
 * document per presenting complaint (`kind: "pathway"`).
 *
 * The schema checks shape only. Whether the graph makes sense (every `next` names a node, every node
 * is reachable, no loops, known Dx codes) is the protocol checker's job (`checker.ts`), so a broken
 * graph is reported with every defect at once rather than refused at the first.
 */

/** The label every sample document carries, shown with every response that shows its content. */
export const SAMPLE_CONTENT_LABEL = 'Sample content for demonstration — not clinically validated';
const SAMPLE_LABEL_PATTERN = /not clinically validated/i;

/** The `next` in the life-threatening module that continues into the presenting complaint's pathway. */
export const CONTINUE_TO_PATHWAY = '@pathway';

export const SKILL_SETS = [
  'clinician',
  'nurse',
  'paramedic',
  'dental',
  'pharmacist',
  'mental_health',
  'none',
] as const;
export type SkillSet = (typeof SKILL_SETS)[number];

/** Dispositions that start a clock must say how long it runs. */
const KINDS_NEEDING_TIMEFRAME = new Set(['ambulance', 'ed_utc', 'speak_to_primary_care']);

const MAX_SINGLE_CHOICE_OPTIONS = 20;
/** The checker enumerates every combination of a multi-choice question's options (2^12 = 4096). */
export const MAX_MULTI_CHOICE_OPTIONS = 12;
const MAX_NODES = 500;

const documentIdSchema = z
  .string()
  .max(64)
  .regex(/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/, 'use lower-case words joined by hyphens');
export const protocolNodeIdSchema = z
  .string()
  .max(64)
  .regex(/^[a-z][a-z0-9_]*$/, 'use lower-case letters, digits and underscores, starting with a letter');
const optionIdSchema = protocolNodeIdSchema;
/** A pointer to a node. Not checked here: a pointer to nowhere is a dead end the checker reports. */
const nextSchema = z.string().min(1).max(64);
const semverSchema = z
  .string()
  .regex(
    /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$/,
    'use a semantic version such as 1.0.0',
  );
const text = (max: number) => z.string().trim().min(1).max(max);
const finite = z.number().finite();
/**
 * Relative weight with which a load simulator takes this branch. Not clinical data: the engine
 * ignores it. Absent means 1.
 */
const simWeightSchema = z.number().finite().positive().max(1_000_000).optional();

/**
 * Clinical safety marks an answer may carry (a single-choice option, a multi-choice option, a
 * numeric range), all optional so packs written before them still load. The protocol checker holds
 * the pack to them (`checker.ts`, safety rules):
 * - `redFlag`: no path from this answer may end in self-care;
 * - `lifeThreatening`: every path from it must end in an emergency ambulance (category 1 or 2);
 *   a life-threatening answer is a red flag too;
 * - `demandsAtLeast`: every path from it must end at least this urgently: `"emergency"` (as
 *   `lifeThreatening`) or a Dx code of the table (`"SAMPLE-ED-1H"`); also a red flag;
 * - `discriminator`: an id shared by the same clinical discriminator in several pathways
 *   (`head_injury_drowsy`); every pathway must lead it to the same or a more urgent disposition.
 * A multi-choice option's marks hold for every answer that selects it, whatever else is selected.
 */
const safetyMarks = {
  redFlag: z.boolean().optional(),
  lifeThreatening: z.boolean().optional(),
  demandsAtLeast: z
    .string()
    .max(32)
    .regex(/^[A-Za-z0-9-]+$/, 'use "emergency" or a Dx code')
    .optional(),
  discriminator: protocolNodeIdSchema.optional(),
};
export type SafetyMarks = { [K in keyof typeof safetyMarks]?: z.infer<(typeof safetyMarks)[K]> };

function requireUniqueIds(items: readonly { id: string }[], ctx: z.RefinementCtx, key: string): void {
  const seen = new Set<string>();
  items.forEach((item, i) => {
    if (seen.has(item.id))
      ctx.addIssue({ code: 'custom', path: [key, i, 'id'], message: `duplicate id ${item.id}` });
    seen.add(item.id);
  });
}

export const singleChoiceNodeSchema = z
  .strictObject({
    type: z.literal('single_choice'),
    text: text(1000),
    help: text(2000).optional(),
    options: z
      .array(
        z.strictObject({
          id: optionIdSchema,
          label: text(300),
          next: nextSchema,
          simWeight: simWeightSchema,
          ...safetyMarks,
        }),
      )
      .max(MAX_SINGLE_CHOICE_OPTIONS),
  })
  .superRefine((node, ctx) => requireUniqueIds(node.options, ctx, 'options'));

const optionSetSchema = z.array(optionIdSchema).min(1).max(MAX_MULTI_CHOICE_OPTIONS);

/** Every condition given must hold: any of `anyOf`, all of `allOf`, none of `none` selected. */
export const multiChoiceConditionSchema = z
  .strictObject({
    anyOf: optionSetSchema.optional(),
    allOf: optionSetSchema.optional(),
    none: optionSetSchema.optional(),
  })
  .refine((w) => w.anyOf !== undefined || w.allOf !== undefined || w.none !== undefined, {
    message: 'give anyOf, allOf or none',
  });

export const multiChoiceNodeSchema = z
  .strictObject({
    type: z.literal('multi_choice'),
    text: text(1000),
    help: text(2000).optional(),
    options: z
      .array(z.strictObject({ id: optionIdSchema, label: text(300), ...safetyMarks }))
      .max(MAX_MULTI_CHOICE_OPTIONS),
    /** Ordered: the first rule whose condition holds decides; otherwise `defaultNext`. */
    rules: z
      .array(
        z.strictObject({ when: multiChoiceConditionSchema, next: nextSchema, simWeight: simWeightSchema }),
      )
      .max(20),
    defaultNext: nextSchema,
    defaultSimWeight: simWeightSchema,
  })
  .superRefine((node, ctx) => {
    requireUniqueIds(node.options, ctx, 'options');
    const offered = new Set(node.options.map((o) => o.id));
    node.rules.forEach((rule, r) => {
      for (const key of ['anyOf', 'allOf', 'none'] as const) {
        rule.when[key]?.forEach((id, i) => {
          if (!offered.has(id))
            ctx.addIssue({
              code: 'custom',
              path: ['rules', r, 'when', key, i],
              message: `option ${id} is not offered by this question`,
            });
        });
      }
    });
  });

export const numericNodeSchema = z
  .strictObject({
    type: z.literal('numeric'),
    text: text(1000),
    help: text(2000).optional(),
    /** Shown beside the number and in the recorded answer: '°C', 'breaths/min', 'years', 'days'. */
    unit: text(32),
    /** Inclusive bounds of an acceptable answer. */
    min: finite,
    max: finite,
    integer: z.boolean().optional(),
    /** Ordered, inclusive at both ends: the first range holding the answer decides. */
    ranges: z
      .array(
        z.strictObject({
          min: finite.optional(),
          max: finite.optional(),
          next: nextSchema,
          simWeight: simWeightSchema,
          ...safetyMarks,
        }),
      )
      .max(20),
  })
  .superRefine((node, ctx) => {
    if (node.min > node.max) ctx.addIssue({ code: 'custom', path: ['max'], message: 'max is below min' });
    if (node.integer && Math.ceil(node.min) > Math.floor(node.max))
      ctx.addIssue({ code: 'custom', path: ['max'], message: 'no whole number lies between min and max' });
    node.ranges.forEach((range, i) => {
      if (range.min !== undefined && range.max !== undefined && range.min > range.max)
        ctx.addIssue({ code: 'custom', path: ['ranges', i, 'max'], message: 'max is below min' });
    });
  });

export const dispositionNodeSchema = z
  .strictObject({
    type: z.literal('disposition'),
    dxCode: z
      .string()
      .max(32)
      .regex(/^[A-Za-z0-9-]+$/, 'use letters, digits and hyphens'),
    label: text(300),
    skillSet: z.enum(SKILL_SETS),
    kind: z.enum(TRIAGE_DISPOSITION_KINDS),
    /** Minutes within which the disposition must be acted on; null when no clock runs (self-care). */
    timeframeMinutes: z
      .number()
      .int()
      .positive()
      .max(60 * 24 * 31)
      .nullable(),
    ambulanceCategory: z.literal(AMBULANCE_CATEGORIES).optional(),
    careAdvice: z.array(text(2000)).min(1).max(30),
  })
  .superRefine((node, ctx) => {
    if (node.kind === 'ambulance' && node.ambulanceCategory === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['ambulanceCategory'],
        message: 'an ambulance disposition needs a category 1–4',
      });
    if (node.kind !== 'ambulance' && node.ambulanceCategory !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['ambulanceCategory'],
        message: 'only an ambulance disposition has a category',
      });
    if (KINDS_NEEDING_TIMEFRAME.has(node.kind) && node.timeframeMinutes === null)
      ctx.addIssue({
        code: 'custom',
        path: ['timeframeMinutes'],
        message: `a ${node.kind} disposition needs a timeframe`,
      });
  });

export const protocolNodeSchema = z.discriminatedUnion('type', [
  singleChoiceNodeSchema,
  multiChoiceNodeSchema,
  numericNodeSchema,
  dispositionNodeSchema,
]);

const nodesSchema = z
  .record(protocolNodeIdSchema, protocolNodeSchema)
  .refine((nodes) => Object.keys(nodes).length <= MAX_NODES, { message: `at most ${MAX_NODES} nodes` });

const header = {
  id: documentIdSchema,
  version: semverSchema,
  title: text(200),
  /** True for demonstration content. Sample content must say "not clinically validated" in `label`. */
  sample: z.boolean(),
  /** Shown with the content: the sample notice, or a licensed pack's attribution. */
  label: text(300),
};

function requireSampleLabel(doc: { sample: boolean; label: string }, ctx: z.RefinementCtx): void {
  if (doc.sample && !SAMPLE_LABEL_PATTERN.test(doc.label))
    ctx.addIssue({
      code: 'custom',
      path: ['label'],
      message: 'sample content must be labelled "not clinically validated"',
    });
}

export const packManifestSchema = z
  .strictObject({
    kind: z.literal('pack'),
    ...header,
    /** Id of the life-threatening module asked before every pathway of this pack. */
    lifeThreatening: documentIdSchema,
    pathways: z
      .array(z.strictObject({ id: documentIdSchema, simWeight: simWeightSchema }))
      .min(1)
      .max(MAX_NODES),
  })
  .superRefine((doc, ctx) => {
    requireSampleLabel(doc, ctx);
    requireUniqueIds(doc.pathways, ctx, 'pathways');
  });

export const lifeThreateningModuleSchema = z
  .strictObject({
    kind: z.literal('life_threatening'),
    ...header,
    startNode: nextSchema,
    nodes: nodesSchema,
  })
  .superRefine(requireSampleLabel);

export const pathwaySchema = z
  .strictObject({
    kind: z.literal('pathway'),
    ...header,
    presentingComplaint: text(200),
    /**
     * The symptom group the Directory of Services matches a case on ('chest-pain'); a service may
     * accept only some groups. Optional: a pathway without one matches services that take any group.
     */
    symptomGroup: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'use lower-case letters, digits and hyphens')
      .optional(),
    /** Who the pathway is for, in whole years: `min` inclusive, `below` exclusive. */
    ageYears: z
      .strictObject({ min: z.number().int().min(0).optional(), below: z.number().int().min(1).optional() })
      .optional(),
    startNode: nextSchema,
    nodes: nodesSchema,
  })
  .superRefine(requireSampleLabel);

export const protocolDocumentSchema = z.discriminatedUnion('kind', [
  packManifestSchema,
  lifeThreateningModuleSchema,
  pathwaySchema,
]);

export type SingleChoiceNode = z.infer<typeof singleChoiceNodeSchema>;
export type MultiChoiceNode = z.infer<typeof multiChoiceNodeSchema>;
export type MultiChoiceCondition = z.infer<typeof multiChoiceConditionSchema>;
export type NumericNode = z.infer<typeof numericNodeSchema>;
export type DispositionNode = z.infer<typeof dispositionNodeSchema>;
export type ProtocolNode = z.infer<typeof protocolNodeSchema>;
export type QuestionNode = SingleChoiceNode | MultiChoiceNode | NumericNode;
export type PackManifest = z.infer<typeof packManifestSchema>;
export type LifeThreateningModule = z.infer<typeof lifeThreateningModuleSchema>;
export type Pathway = z.infer<typeof pathwaySchema>;
export type ProtocolDocument = z.infer<typeof protocolDocumentSchema>;

/** A graph of nodes with a start: a pathway or the life-threatening module. */
export type ProtocolNodeGraph = Pick<Pathway, 'id' | 'startNode' | 'nodes'>;

export function isQuestionNode(node: ProtocolNode): node is QuestionNode {
  return node.type !== 'disposition';
}

/** Own-property lookup, so an id such as `constructor` never finds something of Object.prototype. */
export function protocolNodeById(
  nodes: Readonly<Record<string, ProtocolNode>>,
  id: string,
): ProtocolNode | undefined {
  return Object.hasOwn(nodes, id) ? nodes[id] : undefined;
}

/**
 * Checks one document against the schema. Throws a ValidationError whose field paths start at the
 * document root (`nodes.cp_onset.options.1.next`), prefixed with `prefix` when given.
 */
export function parseProtocolDocument(input: unknown, prefix = ''): ProtocolDocument {
  const result = protocolDocumentSchema.safeParse(input);
  if (!result.success) throw new ValidationError(zodIssuesToFieldIssues(result.error, prefix));
  return result.data;
}
