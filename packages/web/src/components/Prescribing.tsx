import {
  blockingProblems,
  checkPrescription,
  medicineLabel,
  NOT_CLINICALLY_VALIDATED_FORMULARY,
  quantityInWords,
  type CheckResult,
  type Override,
  type PatientForPrescribing,
  type PrescriptionDraft,
} from '@holdfast/core';
import { ageInYears } from '@holdfast/core/triage/eligibility';
import {
  Alert,
  Badge,
  Button,
  Group,
  NativeSelect,
  Paper,
  Radio,
  Stack,
  Table,
  Text,
  TextInput,
  Textarea,
  Title,
} from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useMemo, useState, type FormEvent } from 'react';
import { ApiError } from '../lib/api.ts';
import { useFormProblems } from '../lib/forms.ts';
import {
  cancelPrescription,
  CHECK_WORDS,
  FACT_SOURCE_WORDS,
  prescriptionPdfUrl,
  recordAllergy,
  recordMedication,
  recordPrint,
  sendPrescription,
  useAllergiesMedication,
  useFormulary,
  usePrescriptions,
  WAITING_STATES,
  type FactSource,
  type FactView,
  type PrescriptionView,
} from '../lib/prescribing.ts';
import { londonDateTime } from '../lib/time.ts';
import type { PatientView } from '../lib/types.ts';
import { useDirectoryServices } from './ReferralStatus.tsx';
import { FormAlert } from './FormAlert.tsx';
import { SampleNotice } from './SampleNotice.tsx';

/**
 * Emergency prescribing (C9): the patient's allergies and current medication (anyone who edits
 * patients records them, with where each came from and who said so), the prescriber's panel (medicine
 * from the formulary, dose, quantity, the checks shown as they type, a reason for every warning
 * overridden, hard stops blocking Send), and the case's prescriptions with where each stands.
 */

const SOURCES: FactSource[] = ['caller', 'record', 'clinician'];
const OUTCOME_WORDS = { pass: 'Pass', warning: 'Warning', hard_stop: 'Hard stop' } as const;
const OUTCOME_COLOURS = { pass: '#1e6b30', warning: '#8a4b00', hard_stop: '#a51d1d' } as const;

function factLine(f: FactView): string {
  return `${f.text} — from ${FACT_SOURCE_WORDS[f.source].toLowerCase()}, said by ${f.reportedBy}, recorded ${londonDateTime(f.atMs)}`;
}

/** The formulary's own words that it is sample content, wherever it is shown. */
export function FormularyNotice() {
  const formulary = useFormulary();
  if (!formulary.data?.formulary.notClinicallyValidated) return null;
  return <SampleNotice text={NOT_CLINICALLY_VALIDATED_FORMULARY} compact />;
}

export function AllergiesMedicationPanel({ patientId, canEdit }: { patientId: string; canEdit: boolean }) {
  const facts = useAllergiesMedication(patientId);
  const formulary = useFormulary(canEdit);
  const queryClient = useQueryClient();
  const refresh = () => queryClient.invalidateQueries({ queryKey: ['allergies-medication', patientId] });
  const classes = useMemo(
    () => [...new Set((formulary.data?.medicines ?? []).flatMap((m) => m.allergyClasses))].sort(),
    [formulary.data],
  );
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="allergies-heading">
      <Title order={2} size="h4" id="allergies-heading" mb="xs">
        Allergies and current medication
      </Title>
      {facts.isError && <Alert color="red">Allergies and medication could not be read.</Alert>}
      <Title order={3} size="h5">
        Allergies
      </Title>
      {facts.data && facts.data.allergies.length === 0 && <Text>No allergies recorded.</Text>}
      <ul data-testid="allergies">
        {facts.data?.allergies.map((a) => (
          <li key={a.id}>{factLine(a)}</li>
        ))}
      </ul>
      <Title order={3} size="h5">
        Current medication
      </Title>
      {facts.data && facts.data.medication.length === 0 && <Text>No current medication recorded.</Text>}
      <ul data-testid="medication">
        {facts.data?.medication.map((m) => (
          <li key={m.id}>{factLine(m)}</li>
        ))}
      </ul>
      {canEdit && <FormularyNotice />}
      {canEdit && (
        <Group align="flex-start" grow wrap="wrap">
          <FactForm
            kind="allergy"
            classes={classes}
            medicines={[]}
            onSave={async (v) => {
              await recordAllergy(patientId, {
                allergen: v.name,
                ...(v.extra ? { allergyClass: v.extra } : {}),
                source: v.source,
                reportedBy: v.reportedBy,
              });
              await refresh();
            }}
          />
          <FactForm
            kind="medication"
            classes={[]}
            medicines={(formulary.data?.medicines ?? []).map((m) => ({
              value: m.code,
              label: medicineLabel(m),
            }))}
            onSave={async (v) => {
              await recordMedication(patientId, {
                name: v.name,
                ...(v.extra ? { code: v.extra } : {}),
                source: v.source,
                reportedBy: v.reportedBy,
              });
              await refresh();
            }}
          />
        </Group>
      )}
    </Paper>
  );
}

function FactForm({
  kind,
  classes,
  medicines,
  onSave,
}: {
  kind: 'allergy' | 'medication';
  classes: string[];
  medicines: { value: string; label: string }[];
  onSave: (v: { name: string; extra: string; source: FactSource; reportedBy: string }) => Promise<void>;
}) {
  const [name, setName] = useState('');
  const [extra, setExtra] = useState('');
  const [source, setSource] = useState<FactSource>('caller');
  const [reportedBy, setReportedBy] = useState('');
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<string | null>(null);
  const problems = useFormProblems();
  const allergy = kind === 'allergy';
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    problems.clear();
    setDone(null);
    setBusy(true);
    try {
      await onSave({ name, extra, source, reportedBy });
      setDone(`${allergy ? 'Allergy' : 'Medication'} recorded: ${name}.`);
      setName('');
      setExtra('');
      setReportedBy('');
    } catch (error) {
      problems.fromError(
        error,
        allergy
          ? ['allergen', 'allergyClass', 'source', 'reportedBy']
          : ['name', 'code', 'source', 'reportedBy'],
      );
    } finally {
      setBusy(false);
    }
  };
  const heading = `${kind}-form-heading`;
  return (
    <form onSubmit={(e: FormEvent) => void submit(e)} aria-labelledby={heading} noValidate>
      <Stack gap="xs">
        <Title order={3} size="h6" id={heading}>
          {allergy ? 'Record an allergy' : 'Record a current medicine'}
        </Title>
        <FormAlert message={problems.form} />
        {!allergy && (
          <NativeSelect
            label="Formulary medicine (if it is one)"
            data={[{ value: '', label: 'Not in the formulary' }, ...medicines]}
            value={extra}
            onChange={(e) => {
              const code = e.currentTarget.value;
              setExtra(code);
              const picked = medicines.find((m) => m.value === code);
              if (picked) setName(picked.label);
            }}
          />
        )}
        <TextInput
          label={allergy ? 'Allergic to' : 'Medicine'}
          value={name}
          onChange={(e) => setName(e.currentTarget.value)}
          error={problems.field(allergy ? 'allergen' : 'name')}
        />
        {allergy && (
          <NativeSelect
            label="Allergy class"
            data={[{ value: '', label: 'Not known' }, ...classes.map((c) => ({ value: c, label: c }))]}
            value={extra}
            onChange={(e) => setExtra(e.currentTarget.value)}
            error={problems.field('allergyClass')}
          />
        )}
        <NativeSelect
          label={`Where the ${allergy ? 'allergy' : 'medicine'} came from`}
          data={SOURCES.map((s) => ({ value: s, label: FACT_SOURCE_WORDS[s] }))}
          value={source}
          onChange={(e) => setSource(e.currentTarget.value as FactSource)}
          error={problems.field('source')}
        />
        <TextInput
          label="Who said so"
          description="For example: the patient’s daughter, the GP record"
          value={reportedBy}
          onChange={(e) => setReportedBy(e.currentTarget.value)}
          error={problems.field('reportedBy')}
        />
        <Group>
          <Button type="submit" variant="light" loading={busy}>
            {allergy ? 'Record allergy' : 'Record medication'}
          </Button>
          {done && <Text role="status">{done}</Text>}
        </Group>
      </Stack>
    </form>
  );
}

const num = (s: string): number => (s.trim() === '' ? NaN : Number(s));

/** The prescriber's panel: a prescription, its checks as typed, and Send. */
export function PrescribingPanel({ caseId, patient }: { caseId: string; patient: PatientView | null }) {
  const formulary = useFormulary();
  const facts = useAllergiesMedication(patient?.patientId ?? null);
  const pharmacies = useDirectoryServices();
  const queryClient = useQueryClient();
  const [code, setCode] = useState('');
  const [dose, setDose] = useState('');
  const [frequency, setFrequency] = useState('');
  const [days, setDays] = useState('');
  const [quantity, setQuantity] = useState('');
  const [words, setWords] = useState('');
  const [wordsTyped, setWordsTyped] = useState(false);
  const [directions, setDirections] = useState('');
  const [weight, setWeight] = useState('');
  const [pregnant, setPregnant] = useState('');
  // A reason is kept for the warning it was written against: a changed warning asks again.
  const [reasons, setReasons] = useState<Record<string, string>>({});
  const nominated = patient?.record.nominatedPharmacy ?? null;
  const [pharmacyKind, setPharmacyKind] = useState<'nominated' | 'directory'>(
    nominated ? 'nominated' : 'directory',
  );
  const [pharmacySearch, setPharmacySearch] = useState('');
  const [serviceId, setServiceId] = useState('');
  const [busy, setBusy] = useState(false);
  const [sent, setSent] = useState<string | null>(null);
  const problems = useFormProblems();

  const medicine = formulary.data?.medicines.find((m) => m.code === code) ?? null;
  const controlled = medicine?.controlledSchedule === 2 || medicine?.controlledSchedule === 3;
  const suggestedWords = (() => {
    const q = num(quantity);
    if (!Number.isFinite(q) || q < 0) return '';
    try {
      return quantityInWords(q);
    } catch {
      return '';
    }
  })();
  const shownWords = wordsTyped ? words : suggestedWords;
  const draft: PrescriptionDraft | null =
    medicine && [dose, frequency, days, quantity].every((v) => Number.isFinite(num(v)))
      ? {
          medicineCode: medicine.code,
          doseMg: num(dose),
          frequencyPerDay: num(frequency),
          durationDays: num(days),
          quantity: num(quantity),
          quantityWords: controlled ? shownWords.trim() || null : null,
          directions: directions.trim(),
        }
      : null;
  const forChecks: PatientForPrescribing | null =
    patient && facts.data
      ? {
          ageYears: patient.record.dateOfBirth
            ? ageInYears(patient.record.dateOfBirth, new Date().toISOString())
            : null,
          weightKg: Number.isFinite(num(weight)) ? num(weight) : null,
          pregnant: pregnant === '' ? null : pregnant === 'yes',
          renalImpairment: null,
          allergies: facts.data.allergies.map((a) => ({
            allergen: a.allergen ?? a.text,
            allergyClass: a.allergyClass ?? null,
          })),
          currentMedication: facts.data.medication.map((m) => ({
            code: m.code ?? null,
            name: m.name ?? m.text,
          })),
        }
      : null;
  const checks: CheckResult[] =
    draft && forChecks && formulary.data
      ? checkPrescription(draft, forChecks, {
          ...formulary.data.formulary,
          medicines: formulary.data.medicines,
        })
      : [];
  const reasonKey = (c: CheckResult) => `${c.check}|${c.message}`;
  const overrides: Override[] = checks
    .filter((c) => c.outcome === 'warning' && (reasons[reasonKey(c)] ?? '').trim() !== '')
    .map((c) => ({ check: c.check, reason: reasons[reasonKey(c)]!.trim() }));
  const blocking = draft ? blockingProblems(checks, overrides) : [];
  const communityPharmacies = (pharmacies.data ?? []).filter(
    (s) =>
      s.type === 'community_pharmacy' &&
      (pharmacySearch.trim() === '' ||
        `${s.name} ${s.postcode ?? ''}`.toLowerCase().includes(pharmacySearch.trim().toLowerCase())),
  );
  const missing = [
    !medicine && 'choose a medicine',
    medicine && !draft && 'fill in the dose, times a day, days and quantity',
    draft && draft.directions === '' && 'write the directions',
    pharmacyKind === 'directory' && serviceId === '' && 'choose a pharmacy',
  ].filter((x): x is string => typeof x === 'string');
  const canSend = missing.length === 0 && blocking.length === 0 && !busy;

  const send = async (event: FormEvent) => {
    event.preventDefault();
    if (!draft || !canSend) return;
    problems.clear();
    setSent(null);
    setBusy(true);
    try {
      const r = await sendPrescription(caseId, {
        draft,
        overrides,
        pharmacy: pharmacyKind === 'nominated' ? 'nominated' : { serviceId },
        weightKg: forChecks?.weightKg ?? null,
        pregnant: forChecks?.pregnant ?? null,
      });
      setSent(`${medicineLabel(r.prescription.medicine)}: ${r.prescription.stateText}.`);
      setCode('');
      setReasons({});
      await queryClient.invalidateQueries({ queryKey: ['prescriptions', caseId] });
    } catch (error) {
      problems.fromError(error, [
        'draft.doseMg',
        'draft.frequencyPerDay',
        'draft.durationDays',
        'draft.quantity',
        'draft.quantityWords',
        'draft.directions',
        'pharmacy',
        'weightKg',
      ]);
    } finally {
      setBusy(false);
    }
  };

  if (!patient) return <Alert color="orange">Identify the patient on the case before prescribing.</Alert>;
  return (
    <Paper
      withBorder
      p="md"
      component="form"
      onSubmit={(e: FormEvent) => void send(e)}
      aria-labelledby="prescribe-heading"
      noValidate
      data-testid="prescribing-panel"
    >
      <Title order={2} size="h4" id="prescribe-heading" mb="xs">
        Prescribe
      </Title>
      <FormularyNotice />
      <FormAlert message={problems.form} />
      <Stack gap="xs">
        <NativeSelect
          label="Medicine"
          data={[
            { value: '', label: 'Choose a medicine from the formulary' },
            ...(formulary.data?.medicines ?? []).map((m) => ({
              value: m.code,
              label: `${medicineLabel(m)}${m.controlledSchedule ? ` (schedule ${m.controlledSchedule})` : ''}`,
            })),
          ]}
          value={code}
          onChange={(e) => setCode(e.currentTarget.value)}
        />
        <Group grow align="flex-start" wrap="wrap">
          <TextInput
            label="Dose (mg each time)"
            inputMode="decimal"
            value={dose}
            onChange={(e) => setDose(e.currentTarget.value)}
            error={problems.field('draft.doseMg')}
          />
          <TextInput
            label="Times a day"
            inputMode="numeric"
            value={frequency}
            onChange={(e) => setFrequency(e.currentTarget.value)}
            error={problems.field('draft.frequencyPerDay')}
          />
          <TextInput
            label="For how many days"
            inputMode="numeric"
            value={days}
            onChange={(e) => setDays(e.currentTarget.value)}
            error={problems.field('draft.durationDays')}
          />
          <TextInput
            label={`Quantity${medicine ? ` (${medicine.unit})` : ''}`}
            inputMode="decimal"
            value={quantity}
            onChange={(e) => setQuantity(e.currentTarget.value)}
            error={problems.field('draft.quantity')}
          />
        </Group>
        {controlled && (
          <TextInput
            label="Quantity in words"
            description={`Schedule ${medicine.controlledSchedule}: the quantity in words and figures. Suggested from the figures; check it.`}
            value={shownWords}
            onChange={(e) => {
              setWordsTyped(true);
              setWords(e.currentTarget.value);
            }}
            error={problems.field('draft.quantityWords')}
          />
        )}
        <Textarea
          label="Directions"
          value={directions}
          onChange={(e) => setDirections(e.currentTarget.value)}
          error={problems.field('draft.directions')}
          autosize
          minRows={1}
        />
        <Group grow align="flex-start">
          <TextInput
            label="Weight (kg)"
            inputMode="decimal"
            value={weight}
            onChange={(e) => setWeight(e.currentTarget.value)}
            error={problems.field('weightKg')}
          />
          <NativeSelect
            label="Pregnant"
            data={[
              { value: '', label: 'Not known' },
              { value: 'yes', label: 'Yes' },
              { value: 'no', label: 'No' },
            ]}
            value={pregnant}
            onChange={(e) => setPregnant(e.currentTarget.value)}
          />
        </Group>

        {checks.length > 0 && (
          <section aria-labelledby="checks-heading">
            <Title order={3} size="h5" id="checks-heading">
              Checks
            </Title>
            <Table data-testid="prescription-checks" withRowBorders>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th scope="col">Check</Table.Th>
                  <Table.Th scope="col">Result</Table.Th>
                  <Table.Th scope="col">Why</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {checks.map((c) => (
                  <Table.Tr key={c.check} data-check={c.check} data-outcome={c.outcome}>
                    <Table.Td>{CHECK_WORDS[c.check]}</Table.Td>
                    <Table.Td>
                      <Badge
                        color={OUTCOME_COLOURS[c.outcome]}
                        variant={c.outcome === 'pass' ? 'outline' : 'filled'}
                      >
                        {OUTCOME_WORDS[c.outcome]}
                      </Badge>
                    </Table.Td>
                    <Table.Td>
                      <Text size="sm">{c.message}</Text>
                      {c.outcome === 'warning' && (
                        <Textarea
                          mt={4}
                          label={`Reason to override: ${CHECK_WORDS[c.check]}`}
                          description="Required: say why it is right despite this warning."
                          value={reasons[reasonKey(c)] ?? ''}
                          onChange={(e) => {
                            const v = e.currentTarget.value;
                            setReasons((r) => ({ ...r, [reasonKey(c)]: v }));
                          }}
                          autosize
                          minRows={1}
                        />
                      )}
                      {c.outcome === 'hard_stop' && (
                        <Text size="sm" fw={700}>
                          A hard stop cannot be overridden.
                        </Text>
                      )}
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </section>
        )}

        <Radio.Group
          label="Pharmacy"
          value={pharmacyKind}
          onChange={(v) => setPharmacyKind(v as 'nominated' | 'directory')}
        >
          <Stack gap={4} mt={4}>
            {nominated && (
              <Radio
                value="nominated"
                label={`The patient’s nominated pharmacy: ${nominated.name ?? nominated.odsCode} (${nominated.odsCode})`}
              />
            )}
            <Radio value="directory" label="A community pharmacy from the directory" />
          </Stack>
        </Radio.Group>
        {pharmacyKind === 'directory' && (
          <Group grow align="flex-end">
            <TextInput
              label="Search pharmacies by name or postcode"
              value={pharmacySearch}
              onChange={(e) => setPharmacySearch(e.currentTarget.value)}
            />
            <NativeSelect
              label="Community pharmacy"
              data={[
                { value: '', label: communityPharmacies.length ? 'Choose a pharmacy' : 'No pharmacy found' },
                ...communityPharmacies.map((s) => ({
                  value: s.serviceId,
                  label: `${s.name}${s.postcode ? `, ${s.postcode}` : ''}`,
                })),
              ]}
              value={serviceId}
              onChange={(e) => setServiceId(e.currentTarget.value)}
              error={problems.field('pharmacy')}
            />
          </Group>
        )}

        {(missing.length > 0 || blocking.length > 0) && (
          <div data-testid="send-blocked" role="status">
            <Text fw={700}>Cannot send yet:</Text>
            <ul>
              {[...missing, ...blocking].map((p) => (
                <li key={p}>{p}</li>
              ))}
            </ul>
          </div>
        )}
        <Group>
          <Button type="submit" disabled={!canSend} loading={busy}>
            Send prescription
          </Button>
          {sent && <Text role="status">{sent}</Text>}
        </Group>
      </Stack>
    </Paper>
  );
}

/** The case's prescriptions: where each stands, as the server says; cancel, print, send again. */
export function PrescriptionList({ caseId, canPrescribe }: { caseId: string; canPrescribe: boolean }) {
  const list = usePrescriptions(caseId);
  const prescriptions = list.data?.prescriptions ?? [];
  if (prescriptions.length === 0) return null;
  return (
    <Paper withBorder p="md" component="section" aria-labelledby="prescriptions-heading">
      <Title order={2} size="h4" id="prescriptions-heading" mb="xs">
        Prescriptions
      </Title>
      <Stack>
        {prescriptions.map((p) => (
          <PrescriptionRow key={p.prescriptionId} p={p} caseId={caseId} canPrescribe={canPrescribe} />
        ))}
      </Stack>
    </Paper>
  );
}

function PrescriptionRow({
  p,
  caseId,
  canPrescribe,
}: {
  p: PrescriptionView;
  caseId: string;
  canPrescribe: boolean;
}) {
  const queryClient = useQueryClient();
  const [cancelling, setCancelling] = useState(false);
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const problems = useFormProblems();
  const refresh = () => queryClient.invalidateQueries({ queryKey: ['prescriptions', caseId] });
  const run = async (what: () => Promise<unknown>, fields: string[] = []) => {
    problems.clear();
    setBusy(true);
    try {
      await what();
      await refresh();
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) await refresh();
      problems.fromError(error, fields);
      return false;
    } finally {
      setBusy(false);
    }
  };
  const waiting = WAITING_STATES.includes(p.state);
  const name = medicineLabel(p.medicine);
  return (
    <Paper
      withBorder
      p="sm"
      data-testid="prescription"
      data-state={p.state}
      aria-label={`Prescription of ${name}`}
      component="article"
    >
      <Text fw={700}>
        {name} — {p.draft.doseMg} mg {p.draft.frequencyPerDay} times a day for {p.draft.durationDays} days,
        quantity {p.draft.quantity}
        {p.draft.quantityWords ? ` (${p.draft.quantityWords})` : ''}
      </Text>
      <Text size="sm">
        {p.pharmacy.name} ({p.pharmacy.odsCode}) · prescription id {p.shortFormId} · {londonDateTime(p.atMs)}
      </Text>
      {p.overrides.length > 0 && (
        <Text size="sm">
          Warnings overridden: {p.overrides.map((o) => `${CHECK_WORDS[o.check]} (${o.reason})`).join('; ')}
        </Text>
      )}
      <Text
        data-testid="prescription-state"
        role="status"
        fw={700}
        c={p.state === 'failed' || p.state === 'rejected' ? '#a51d1d' : undefined}
      >
        {p.stateText}
      </Text>
      <FormAlert message={problems.form} />
      {canPrescribe && (
        <Group mt="xs">
          {(p.state === 'failed' || p.state === 'rejected') && (
            <Button
              loading={busy}
              onClick={() =>
                void run(async () => {
                  await recordPrint(
                    p.prescriptionId,
                    `The message to ${p.pharmacy.name} could not go (${p.state})`,
                  );
                  window.open(prescriptionPdfUrl(p.prescriptionId), '_blank', 'noopener');
                })
              }
            >
              Print paper prescription
            </Button>
          )}
          {p.state === 'printed' && (
            <Text size="sm">
              Printed on paper: to send it by message instead, cancel the paper prescription first.
            </Text>
          )}
          {p.state === 'cancelled' && (
            <Button
              variant="light"
              loading={busy}
              onClick={() =>
                void run(() =>
                  sendPrescription(caseId, {
                    // The server keeps the medicine beside the draft, not in it.
                    draft: { ...p.draft, medicineCode: p.medicine.code },
                    overrides: p.overrides,
                    pharmacy: { odsCode: p.pharmacy.odsCode },
                  }),
                )
              }
            >
              Send again
            </Button>
          )}
          {p.state !== 'cancelled' && p.state !== 'dispensed' && !cancelling && (
            <Button variant="default" onClick={() => setCancelling(true)}>
              Cancel prescription
            </Button>
          )}
        </Group>
      )}
      {cancelling && (
        <Stack
          component="form"
          gap="xs"
          mt="xs"
          onSubmit={(e: FormEvent) => {
            e.preventDefault();
            void run(() => cancelPrescription(p.prescriptionId, reason), ['reason']).then((ok) => {
              if (ok) setCancelling(false);
            });
          }}
        >
          <Textarea
            label={`Why cancel the prescription of ${name}?`}
            value={reason}
            onChange={(e) => setReason(e.currentTarget.value)}
            error={problems.field('reason')}
            autosize
            minRows={1}
          />
          <Group>
            <Button type="submit" color="#a51d1d" loading={busy}>
              Confirm cancellation
            </Button>
            <Button variant="default" onClick={() => setCancelling(false)}>
              Keep it
            </Button>
          </Group>
        </Stack>
      )}
      {waiting && <Text size="xs">The pharmacy has not answered yet; this updates by itself.</Text>}
    </Paper>
  );
}
