import { z } from 'zod';
import { defineEventType } from '../ledger/registry.ts';
import { ODS_CODE } from '../patients/events.ts';

/**
 * Who a provider is in national reporting: the organisation's ODS code, its IUC contract area and
 * NHS England region, as the IUC ADC layout names them (ORG_CODE, CONTRACT_CODE/NAME,
 * REGION_CODE/NAME). Set by a provider admin; each change is a fact, the newest in ledger order
 * stands. A setting left out is not set: the report says it is missing rather than inventing one.
 */

const text = (max: number) =>
  z
    .string()
    .trim()
    .min(1, 'must not be empty (leave it out if it is not known)')
    .max(max, `must be at most ${max} characters`);

export const providerReportingSettingsSchema = z.strictObject({
  orgCode: z
    .string()
    .regex(ODS_CODE, 'must be an ODS organisation code: 3 to 6 capital letters and digits, e.g. NWX')
    .optional(),
  /** The name in the return; the provider's own name when left out. */
  orgName: text(200).optional(),
  contractCode: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9/_-]{0,31}$/, 'must be a contract area code: letters, digits, / _ -')
    .optional(),
  contractName: text(200).optional(),
  regionCode: z
    .string()
    .regex(/^[A-Z0-9]{3}$/, 'must be an NHS England region code such as Y56')
    .optional(),
  regionName: text(200).optional(),
});
export type ProviderReportingSettings = z.infer<typeof providerReportingSettingsSchema>;

export const providerReportingSettingsSet = defineEventType({
  type: 'provider.reporting_settings_set',
  v: 1,
  description:
    'A provider admin set the provider’s national reporting identity (ODS code, contract area, region).',
  schema: z.strictObject({ settings: providerReportingSettingsSchema }),
  // One subject per provider: the events are in the tenant's ledger.
  subjectOf: () => 'provider-settings',
});

/** The settings every national return needs; the organisation name falls back to the provider's. */
export const REQUIRED_REPORTING_SETTINGS = [
  'orgCode',
  'contractCode',
  'contractName',
  'regionCode',
  'regionName',
] as const satisfies readonly (keyof ProviderReportingSettings)[];

export const REPORTING_SETTING_WORDS: Record<keyof ProviderReportingSettings, string> = {
  orgCode: 'the organisation’s ODS code',
  orgName: 'the organisation’s name',
  contractCode: 'the contract area code',
  contractName: 'the contract area name',
  regionCode: 'the region code',
  regionName: 'the region name',
};

export const REPORTING_EVENT_TYPES = [providerReportingSettingsSet];
