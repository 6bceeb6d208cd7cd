import { describe, expect, it } from 'vitest';
import { mergeDraft } from '../src/lib/drafts.ts';
import { OBSERVATION_FIELDS, observationWords } from '../src/screens/clinician/News2Panel.tsx';

/**
 * A draft brought back into a consultation form (lib/drafts.ts): it fills what is still blank, never
 * overwrites what was typed, and names each field where it had other words (shown on the screen).
 */
describe('merging an unsaved draft into the form', () => {
  const blank = { history: '', plan: '', pulse: '', spo2Scale: '1' };

  it('fills blank fields, keeps typed ones, and names those where the draft differed', () => {
    const typed = { ...blank, plan: 'Review by GP', pulse: '88' };
    const draft = { history: 'Woke at 4am', plan: 'Review by GP', pulse: '92', spo2Scale: '1' };
    const { merged, filled, differing } = mergeDraft(typed, blank, draft);
    expect(merged).toEqual({ history: 'Woke at 4am', plan: 'Review by GP', pulse: '88', spo2Scale: '1' });
    expect(filled).toEqual(['history']);
    // The same words on both sides, and a default left as it was, are neither filled nor differing.
    expect(differing).toEqual(['pulse']);
  });

  it('a draft with nothing in a typed field is not differing; a changed default in the draft fills a field left at the default', () => {
    const typed = { ...blank, history: 'Cough', spo2Scale: '2' };
    const { merged, filled, differing } = mergeDraft(typed, blank, { history: '', spo2Scale: '1' });
    expect(merged).toEqual(typed);
    expect(filled).toEqual([]);
    expect(differing).toEqual([]);
    const other = mergeDraft({ ...blank }, blank, {
      spo2Scale: '2',
      unknown: 'x',
      constructor: 'x',
      toString: 'x',
    } as never);
    expect(other.merged.spo2Scale).toBe('2');
    expect(other.filled).toEqual(['spo2Scale']);
    // Only the form's own fields: never a key the draft added, nor one every object has.
    expect(Object.keys(other.merged).sort()).toEqual(Object.keys(blank).sort());
    expect(Object.hasOwn(other.merged, 'constructor')).toBe(false);
  });

  it('names a chosen observation by the words the form shows for it', () => {
    expect(observationWords('consciousness', 'new_confusion')).toBe('New confusion');
    expect(observationWords('airOrOxygen', 'oxygen')).toBe('Supplemental oxygen');
    expect(observationWords('pulse', '92')).toBe('92');
    expect(OBSERVATION_FIELDS.pulse.label).toBe('Pulse (beats per minute)');
  });
});
