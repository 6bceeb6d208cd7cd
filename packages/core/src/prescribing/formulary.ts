import { z } from 'zod';

/**
 * A formulary as data (C9): the medicines a provider prescribes from, with dose bands by age and
 * weight, daily maxima, controlled-drug schedules, allergy classes, interactions and cautions.
 * (h18-web's minimal stand-in of CONTRACT-18's names; h18-core's fuller version replaces it.)
 */
export type ControlledSchedule = 2 | 3 | 4 | 5;

export interface DoseRule {
  minAgeYears: number;
  maxAgeYears: number | null;
  minWeightKg?: number | null;
  maxWeightKg?: number | null;
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

const severity = z.enum(['warning', 'hard_stop']);
const mg = z.number().min(0).max(1_000_000);
const text = (max: number) => z.string().trim().min(1).max(max);

const doseRuleSchema = z.strictObject({
  minAgeYears: z.number().min(0).max(150),
  maxAgeYears: z.number().min(0).max(150).nullable(),
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
  code: z.string().regex(/^\d{6,18}$/, 'must be 6 to 18 digits (a dm+d-style code)'),
  name: text(200),
  form: text(100),
  strength: text(100),
  strengthMg: mg.nullable(),
  route: text(60),
  unit: text(40),
  doseRules: z.array(doseRuleSchema).min(1).max(20),
  packSizes: z.array(z.number().positive().max(10_000)).max(20),
  controlledSchedule: z.union([z.literal(2), z.literal(3), z.literal(4), z.literal(5)]).nullable(),
  allergyClasses: z.array(text(60)).max(20),
  therapeuticClass: text(60),
  interactionClasses: z.array(text(60)).max(20),
  interactions: z.array(z.strictObject({ with: text(60), severity, text: text(500) })).max(50),
  cautions: z.strictObject({
    pregnancy: severity.optional(),
    renal: severity.optional(),
    under12: severity.optional(),
    text: text(1000).optional(),
  }),
  maxDurationDays: z.number().int().min(1).max(366).nullable().optional(),
});

export const formularySchema: z.ZodType<Formulary> = z.strictObject({
  id: text(100),
  version: text(40),
  title: text(200),
  notClinicallyValidated: z.boolean(),
  medicines: z.array(medicineSchema).max(5000),
});

export class FormularyError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'FormularyError';
  }
}

export function parseFormulary(json: unknown): Formulary {
  const parsed = formularySchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new FormularyError(issue.path.join('.') || 'formulary', issue.message);
  }
  return parsed.data;
}

/** Problems a formulary's author must fix: codes repeated, an interaction naming nothing known. */
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
      problems.push({
        code: m.code,
        field: `medicines.${i}.code`,
        message: 'repeats another medicine’s code',
      });
    codes.add(m.code);
    m.interactions.forEach((x, j) => {
      if (!known.has(x.with))
        problems.push({
          code: m.code,
          field: `medicines.${i}.interactions.${j}.with`,
          message: `names ${x.with}, which no medicine has as a code or interaction class`,
        });
    });
  });
  return { problems };
}
