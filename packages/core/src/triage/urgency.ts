import type { DxCodeTable, TriageDispositionKind } from './dx-codes.ts';

/**
 * How urgent a disposition is, so the protocol checker can say one outcome is below another.
 *
 * The order, most urgent first:
 * 1. an ambulance, by category (1, 2, 3, 4: the Ambulance Response Programme's own order);
 * 2. any other disposition that starts a clock, by its window (shorter is more urgent); at the same
 *    window an emergency department or urgent treatment centre comes before a call-back or a contact,
 *    because the patient is seen face to face;
 * 3. a disposition with no clock (non-urgent GP, working days, pharmacist, information only);
 * 4. self-care.
 * Dispositions equal under this order are "as urgent as" each other (Dx11 and Dx117 both call back
 * within 1 hour). Every ambulance counts as more urgent than every other disposition: category 3 and 4
 * are validated by a clinician before dispatch, but the patient is on an ambulance service's list.
 */
export interface DispositionUrgency {
  kind: TriageDispositionKind;
  timeframeMinutes: number | null;
  ambulanceCategory?: number | undefined;
}

/** `demandsAtLeast: "emergency"`: an emergency ambulance, category 1 or 2. */
export const EMERGENCY_DEMAND = 'emergency';
const EMERGENCY_CATEGORY = 2;
const EMERGENCY: DispositionUrgency = {
  kind: 'ambulance',
  timeframeMinutes: null,
  ambulanceCategory: EMERGENCY_CATEGORY,
};

function urgencyKey(u: DispositionUrgency): [number, number, number] {
  if (u.kind === 'ambulance') return [0, u.ambulanceCategory ?? 4, 0];
  if (u.kind === 'self_care') return [3, 0, 0];
  if (u.timeframeMinutes === null) return [2, 0, 0];
  return [1, u.timeframeMinutes, u.kind === 'ed_utc' ? 0 : 1];
}

/** Negative when `a` is more urgent than `b`, positive when less, 0 when as urgent. */
export function compareUrgency(a: DispositionUrgency, b: DispositionUrgency): number {
  const [ka, kb] = [urgencyKey(a), urgencyKey(b)];
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! - kb[i]!;
  return 0;
}

/** What an answer's `demandsAtLeast` asks for, resolved: or null when it names no Dx code in the table. */
export interface UrgencyDemand {
  urgency: DispositionUrgency;
  /** Plain words: "an emergency ambulance (category 1 or 2)", "SAMPLE-ED-1H (Attend … within 1 hour)". */
  describe: string;
}

/** What a `lifeThreatening: true` answer demands. */
export const LIFE_THREATENING_DEMAND: UrgencyDemand = {
  urgency: EMERGENCY,
  describe: `an emergency ambulance (category 1 or ${EMERGENCY_CATEGORY})`,
};

export function resolveDemand(demand: string, dxCodes: DxCodeTable): UrgencyDemand | null {
  if (demand === EMERGENCY_DEMAND) return { urgency: EMERGENCY, describe: LIFE_THREATENING_DEMAND.describe };
  const def = dxCodes.get(demand);
  if (!def) return null;
  return {
    urgency: {
      kind: def.kind,
      timeframeMinutes: def.timeframeMinutes,
      ambulanceCategory: def.ambulanceCategory,
    },
    describe: `${def.code} (${def.meaning})`,
  };
}
