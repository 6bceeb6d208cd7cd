import { describe, expect, it } from 'vitest';
import {
  caseListSites,
  hasPermission,
  redactPatientFields,
  ROLES,
  rolesReadingConfidences,
  siteDecision,
  unwritablePatientFields,
} from '../src/index.ts';

describe('access policy', () => {
  it('cases: own site, across sites, or worked on; nothing for a user with no sites', () => {
    for (const role of ROLES) {
      const across = hasPermission([role], 'queue.all_sites');
      expect(siteDecision({ roles: [role], siteIds: ['a'] }, 'case', 'a').allowed).toBe(true);
      expect(siteDecision({ roles: [role], siteIds: ['a'] }, 'case', 'b').allowed).toBe(across);
      expect(siteDecision({ roles: [role], siteIds: ['a'] }, 'case', 'b', { involved: true }).allowed).toBe(
        true,
      );
      expect(caseListSites({ roles: [role], siteIds: [] })).toEqual(across ? 'all' : []);
    }
    const none = siteDecision({ roles: ['clinician'], siteIds: [] }, 'case', 'a');
    expect(none.allowed === false && none.reason).toMatch(/no sites/);
  });

  it('patients: own site, or break-glass with a reason for the roles that hold it (working across sites does not open records)', () => {
    const reason = 'Caller at my site, record held elsewhere';
    for (const role of ROLES) {
      const glass = hasPermission([role], 'patients.break_glass');
      expect(siteDecision({ roles: [role], siteIds: ['a'] }, 'patient', 'a').allowed).toBe(true);
      expect(siteDecision({ roles: [role], siteIds: ['a'] }, 'patient', 'b').allowed).toBe(false);
      expect(
        siteDecision({ roles: [role], siteIds: ['a'] }, 'patient', 'b', { breakGlassReason: reason }).allowed,
      ).toBe(glass);
      expect(
        siteDecision({ roles: [role], siteIds: ['a'] }, 'patient', 'b', { breakGlassReason: ' short    ' })
          .allowed,
      ).toBe(false);
    }
  });

  it('fields: withheld from roles that cannot read them, and refused on write', () => {
    const record = {
      clinicalNotes: 'Sample note (not clinically validated)',
      accessInstructions: 'Key safe',
      specialNotes: [
        { kind: 'care_plan' as const, text: 'Plan' },
        { kind: 'safeguarding' as const, text: 'Concern' },
      ],
    };
    const receptionist = redactPatientFields(['receptionist'], record);
    expect(receptionist.withheld).toEqual(['clinicalNotes', 'accessInstructions', 'specialNotes[1].text']);
    expect(receptionist.record).toEqual({
      specialNotes: [
        { kind: 'care_plan', text: 'Plan' },
        { kind: 'safeguarding', withheld: true },
      ],
    });
    expect(redactPatientFields(['dispatcher'], record).withheld).toEqual(['clinicalNotes']);
    expect(redactPatientFields(['clinician'], record).withheld).toEqual([]);
    expect(unwritablePatientFields(['receptionist'], record)).toEqual([
      'clinicalNotes',
      'accessInstructions',
    ]);
    expect(unwritablePatientFields(['health_adviser'], record)).toEqual([
      'clinicalNotes',
      'accessInstructions',
    ]);
    expect(unwritablePatientFields(['dispatcher'], record)).toEqual(['clinicalNotes']);
    expect(unwritablePatientFields(['clinician'], record)).toEqual([]);
    expect(unwritablePatientFields(['receptionist'], {})).toEqual([]);
  });

  it('the roles whose grant is clinical are exactly those that read clinical notes or safeguarding text', () => {
    expect(rolesReadingConfidences([...ROLES])).toEqual([
      'clinician',
      'prescriber',
      'dispatcher',
      'shift_manager',
    ]);
    for (const role of ROLES) {
      const { record } = redactPatientFields([role], {
        clinicalNotes: 'notes',
        specialNotes: [{ kind: 'safeguarding' as const, text: 'concern' }],
      });
      const readsSomething =
        record.clinicalNotes !== undefined ||
        (record.specialNotes?.[0] as { text?: string })?.text === 'concern';
      expect(rolesReadingConfidences([role]).length === 1, role).toBe(readsSomething);
    }
  });
});
