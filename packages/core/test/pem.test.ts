import { describe, expect, it } from 'vitest';
import { pemContent, pemNeverSent, PEM_NEVER_SEND_DX, type PemCaseFacts } from '../src/messaging/pem.ts';

const closedAtMs = Date.parse('2026-12-04T19:00:00Z'); // a Friday evening
const facts = (over: Partial<PemCaseFacts>): PemCaseFacts => ({
  dxCode: 'Dx11',
  dispositionKind: 'contact_primary_care',
  dispositionLabel: 'Contact a GP within 6 hours',
  timeframeMinutes: 360,
  outcomes: [],
  closedAtMs,
  ...over,
});

describe('Post Event Message rules', () => {
  it.each(['Dx28', 'Dx52', 'Dx60', 'Dx22', 'Dx23', 'Dx45', 'Dx46', 'Dx63'])('never sent for %s', (dx) => {
    expect(pemNeverSent(dx)).toBe(true);
    expect(PEM_NEVER_SEND_DX.has(dx)).toBe(true);
  });

  it.each(['Dx11', 'Dx06', 'SAMPLE-SELFCARE', 'SAMPLE-ED-4H'])('sent for %s', (dx) => {
    expect(pemNeverSent(dx)).toBe(false);
  });

  it('the sample dental codes follow the table (never sent); no disposition at all is not never-send', () => {
    expect(pemNeverSent('SAMPLE-DENTAL-4H')).toBe(true);
    expect(pemNeverSent(null)).toBe(false);
  });

  it('contact primary care is for action, by 18:30 London on the next working day (Monday after a Friday)', () => {
    const c = pemContent(facts({}));
    expect(c.type).toBe('for_action');
    expect(c.action!.what).toContain(
      'The patient was advised to contact the practice (Contact a GP within 6 hours)',
    );
    expect(new Date(c.action!.byMs).toISOString()).toBe('2026-12-07T18:30:00.000Z');
    expect(new Date(c.dueAtMs).toISOString()).toBe('2026-12-07T08:00:00.000Z');
  });

  it('a disposition window that ends later than core hours sets the by-when', () => {
    const c = pemContent(facts({ timeframeMinutes: 5 * 24 * 60 }));
    expect(new Date(c.action!.byMs).toISOString()).toBe('2026-12-09T19:00:00.000Z');
  });

  it('a prescription out of hours is for action; self-care and advice alone are for information', () => {
    const prescribed = pemContent(
      facts({ dispositionKind: 'self_care', outcomes: ['prescribe', 'advice_and_close'] }),
    );
    expect(prescribed.type).toBe('for_action');
    expect(prescribed.action!.what).toBe(
      'A medicine was prescribed out of hours: review it and update the patient record',
    );
    const info = pemContent(facts({ dispositionKind: 'self_care', outcomes: ['advice_and_close'] }));
    expect(info).toEqual({
      type: 'for_information',
      action: null,
      dueAtMs: Date.parse('2026-12-07T08:00:00Z'),
    });
    expect(pemContent(facts({ dispositionKind: 'ed_utc' })).type).toBe('for_information');
  });
});
