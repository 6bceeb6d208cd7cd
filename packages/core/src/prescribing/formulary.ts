import { z } from 'zod';

/**
 * A formulary as data (C9): medicines with a code in the dm+d manner, their dose rules by age and
 * weight, pack sizes, controlled-drug schedule, allergy classes, interactions and cautions. Loaded
 * from a directory on the server (prescribing/formulary-files.ts), checked by `checkFormulary`.
 */
export type ControlledSchedule = 2 | 3 | 4 | 5;

export interface DoseRule {
  minAgeYears: number;
  maxAgeYears: number | null;
  minWeightKg?: number | null;
  maxWeightKg?: number | null;
  /** Per administration: fixed (mg), or by weight (mgPerKg, capped by maxSingleMg). */
  singleDose:
    { minMg: number; maxMg: number } | { mgPerKg: number; maxSingleMg: number; toleranceFraction?: number };
  maxDailyMg: number;
  maxFrequencyPerDay: number;
}

export interface Interaction {
  with: string;
  severity: 'warning' | 'hard_stop';
  text: string;
}

export interface Medicine {
  code: string;
  name: string;
  form: string;
  strength: string;
  strengthMg: number | null;
  route: string;
  unit: string;
  doseRules: DoseRule[];
  packSizes: number[];
  controlledSchedule: ControlledSchedule | null;
  allergyClasses: string[];
  therapeuticClass: string;
  interactionClasses: string[];
  interactions: Interaction[];
  cautions: {
    pregnancy?: 'warning' | 'hard_stop';
    renal?: 'warning' | 'hard_stop';
    under12?: 'warning' | 'hard_stop';
    text?: string;
  };
  maxDurationDays?: number | null;
}

export interface Formulary {
  id: string;
  version: string;
  title: string;
  notClinicallyValidated: boolean;
  medicines: Medicine[];
}

export const NOT_CLINICALLY_VALIDATED_FORMULARY =
  'Formulary: sample content for demonstration — not clinically validated';

const mg = z.number().finite().min(0).max(1_000_000);
const severity = z.enum(['warning', 'hard_stop']);
const text = (max: number) => z.string().trim().min(1).max(max);

const doseRuleSchema = z.strictObject({
  minAgeYears: z.number().int().min(0).max(130),
  maxAgeYears: z.number().int().min(0).max(200).nullable(),
  minWeightKg: z.number().min(0).max(500).nullable().optional(),
  maxWeightKg: z.number().min(0).max(500).nullable().optional(),
  singleDose: z.union([
    z.strictObject({ minMg: mg, maxMg: mg }),
    z.strictObject({ mgPerKg: mg, maxSingleMg: mg, toleranceFraction: z.number().min(0).max(1).optional() }),
  ]),
  maxDailyMg: mg,
  maxFrequencyPerDay: z.number().int().min(1).max(24),
});

const medicineSchema = z.strictObject({
  code: z.string().regex(/^\d{6,18}$/, 'must be a dm+d-style code of 6 to 18 digits'),
  name: text(200),
  form: text(100),
  strength: text(100),
  strengthMg: mg.nullable(),
  route: text(60),
  unit: text(40),
  doseRules: z.array(doseRuleSchema).min(1).max(20),
  packSizes: z.array(z.number().int().min(1).max(10_000)).min(1).max(20),
  controlledSchedule: z.union([z.literal(2), z.literal(3), z.literal(4), z.literal(5)]).nullable(),
  allergyClasses: z.array(text(60)).max(20),
  therapeuticClass: text(60),
  interactionClasses: z.array(text(60)).max(20),
  interactions: z.array(z.strictObject({ with: text(60), severity, text: text(500) })).max(50),
  cautions: z.strictObject({
    pregnancy: severity.optional(),
    renal: severity.optional(),
    under12: severity.optional(),
    text: text(500).optional(),
  }),
  maxDurationDays: z.number().int().min(1).max(366).nullable().optional(),
});

export const formularySchema: z.ZodType<Formulary> = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'must be lower-case letters, digits and hyphens'),
  version: text(40),
  title: text(200),
  notClinicallyValidated: z.boolean(),
  medicines: z.array(medicineSchema).min(1).max(5000),
}) as z.ZodType<Formulary>;

export class FormularyError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** Parses a formulary; throws FormularyError naming the first bad field. */
export function parseFormulary(json: unknown): Formulary {
  const r = formularySchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new FormularyError(issue.path.join('.') || 'formulary', issue.message);
  }
  return r.data;
}

/** Problems a parsed formulary can still have: repeated codes, interactions naming nothing known. */
export function checkFormulary(f: Formulary): {
  problems: { code: string | null; field: string; message: string }[];
} {
  const problems: { code: string | null; field: string; message: string }[] = [];
  const codes = new Set<string>();
  const known = new Set<string>();
  for (const m of f.medicines) {
    known.add(m.code);
    for (const c of m.interactionClasses) known.add(c);
  }
  f.medicines.forEach((m, i) => {
    if (codes.has(m.code))
      problems.push({ code: m.code, field: `medicines[${i}].code`, message: 'repeats another medicine' });
    codes.add(m.code);
    if (m.controlledSchedule !== null && m.controlledSchedule <= 3 && (m.maxDurationDays ?? 31) > 30)
      problems.push({
        code: m.code,
        field: `medicines[${i}].maxDurationDays`,
        message: 'a schedule 2 or 3 medicine must be limited to 30 days',
      });
    m.interactions.forEach((x, j) => {
      if (!known.has(x.with))
        problems.push({
          code: m.code,
          field: `medicines[${i}].interactions[${j}].with`,
          message: 'names no medicine or interaction class of the formulary',
        });
    });
  });
  return { problems };
}
