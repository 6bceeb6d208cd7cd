import {
  Alert,
  Badge,
  Button,
  Checkbox,
  Group,
  List,
  NumberInput,
  Paper,
  Stack,
  Text,
  Title,
} from '@mantine/core';
import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { FormAlert } from '../../components/FormAlert.tsx';
import { SampleNotice } from '../../components/SampleNotice.tsx';
import { api, isServerUnavailable } from '../../lib/api.ts';
import { useFormProblems } from '../../lib/forms.ts';
import type { QuestionView, TriagePathStep, WalkResult } from '../../lib/types.ts';

/**
 * Questions seen on this case, kept for this browser tab: going back to an earlier question shows it
 * again with its options (the API answers the current question only). Question wording is protocol
 * content, not patient data.
 */
function rememberQuestion(caseId: string, node: QuestionView): void {
  try {
    sessionStorage.setItem(`hf:q:${caseId}:${node.id}`, JSON.stringify(node));
  } catch {
    // Storage full or disabled: going back then needs the question to be asked again from the start.
  }
}

export function recallQuestion(caseId: string, nodeId: string): QuestionView | null {
  try {
    const text = sessionStorage.getItem(`hf:q:${caseId}:${nodeId}`);
    return text ? (JSON.parse(text) as QuestionView) : null;
  } catch {
    return null;
  }
}

type AnswerValue = string | string[] | number;

/** An answer given while the server did not answer: kept on screen, sent again by itself. */
interface UnsentAnswer {
  nodeId: string;
  value: AnswerValue;
  /** A change of an earlier answer (sent to /changes), not the current question's answer. */
  change: boolean;
  /** The answer in the words shown on screen. */
  words: string;
}

/** How often an unsent answer is tried again while the server does not answer. */
const RESEND_EVERY_MS = 2_000;

function answerWords(node: QuestionView, value: AnswerValue): string {
  if (node.type === 'numeric') return `${value} ${node.unit}`;
  const ids = Array.isArray(value) ? value : [value];
  if (ids.length === 0) return 'None of these';
  const options: { id: string; label: string }[] = 'options' in node ? node.options : [];
  return ids.map((id) => options.find((o) => o.id === id)?.label ?? id).join(', ');
}

/** Keys typed into a text or number field are the field's, not shortcuts. */
function typingInField(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  const tag = target.tagName;
  if (tag === 'TEXTAREA' || target.isContentEditable) return true;
  if (tag === 'INPUT') {
    const type = (target as HTMLInputElement).type;
    return type !== 'checkbox' && type !== 'radio' && type !== 'button' && type !== 'submit';
  }
  return tag === 'SELECT';
}

/**
 * The triage runner: one question at a time, keyboard first. Number keys answer (1–9; on a
 * "choose all that apply" question they tick options and Enter confirms), B or Backspace goes back
 * to change the previous answer, and the path so far stays visible beside the question.
 */
export function TriageRunner({
  caseId,
  result,
  onResult,
  initialChange = null,
}: {
  caseId: string;
  result: Extract<WalkResult, { status: 'question' }>;
  onResult: (r: WalkResult) => void;
  /** Open on this earlier question to change its answer (from a proposed disposition). */
  initialChange?: { node: QuestionView; step: TriagePathStep } | null;
}) {
  // When changing an earlier answer: that question (with the answer given before).
  const [changing, setChanging] = useState<{ node: QuestionView; step: TriagePathStep } | null>(
    initialChange,
  );
  const [busy, setBusy] = useState(false);
  const [selected, setSelected] = useState<string[]>([]);
  const [numeric, setNumeric] = useState<string | number>('');
  const [unsent, setUnsent] = useState<UnsentAnswer | null>(null);
  const problems = useFormProblems();
  const headingRef = useRef<HTMLHeadingElement>(null);
  const numberRef = useRef<HTMLInputElement>(null);

  useEffect(() => rememberQuestion(caseId, result.node), [caseId, result.node]);

  const node = changing?.node ?? result.node;
  const path = result.path;

  useEffect(() => {
    // A new question: start it clean and move the focus to it, so it is read out and keys act on it.
    const prior = changing?.step.value;
    setSelected(Array.isArray(prior) ? prior : []);
    setNumeric(typeof prior === 'number' ? prior : '');
    problems.clear();
    // A number is typed: its field takes the focus (it is labelled by the question's group).
    if (node.type === 'numeric') numberRef.current?.focus();
    else headingRef.current?.focus();
    // Runs when the question changes only (the problems helper is new at every render).
  }, [node.id, changing]);

  const submit = useCallback(
    async (value: AnswerValue) => {
      if (busy) return;
      setBusy(true);
      problems.clear();
      try {
        const r = await api<WalkResult>(
          'POST',
          `/api/v1/cases/${caseId}/triage/${changing ? 'changes' : 'answers'}`,
          {
            nodeId: node.id,
            value,
          },
        );
        setChanging(null);
        setUnsent(null);
        onResult(r);
      } catch (error) {
        // The server did not answer (or failed): the answer is kept on screen, marked not saved,
        // and sent by itself when the server answers again. Anything else is the answer's problem.
        if (isServerUnavailable(error)) {
          problems.clear();
          setUnsent({ nodeId: node.id, value, change: !!changing, words: answerWords(node, value) });
        } else problems.fromError(error, ['value']);
      } finally {
        setBusy(false);
      }
    },
    [busy, caseId, changing, node, onResult, problems],
  );

  // Sends the kept answer when the server answers again. The answer may have reached the server
  // before its reply was lost: the current question is read first, and if the walk has moved past
  // the question, that answer was saved and the screen carries on from where the server is.
  useEffect(() => {
    if (!unsent) return;
    let cancelled = false;
    let timer: ReturnType<typeof setTimeout>;
    const attempt = async () => {
      try {
        if (!unsent.change) {
          const current = await api<WalkResult | { status: 'not_started' }>(
            'GET',
            `/api/v1/cases/${caseId}/triage`,
          );
          if (cancelled) return;
          if (!(current.status === 'question' && current.node.id === unsent.nodeId)) {
            setUnsent(null);
            if (current.status !== 'not_started') onResult(current);
            return;
          }
        }
        const r = await api<WalkResult>(
          'POST',
          `/api/v1/cases/${caseId}/triage/${unsent.change ? 'changes' : 'answers'}`,
          { nodeId: unsent.nodeId, value: unsent.value },
        );
        if (cancelled) return;
        setUnsent(null);
        setChanging(null);
        onResult(r);
      } catch (error) {
        if (cancelled) return;
        if (isServerUnavailable(error)) timer = setTimeout(() => void attempt(), RESEND_EVERY_MS);
        else {
          setUnsent(null);
          problems.fromError(error, ['value']);
        }
      }
    };
    timer = setTimeout(() => void attempt(), RESEND_EVERY_MS);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
    // Restarted for each new unsent answer only (onResult and problems are new at every render).
  }, [unsent, caseId]);

  const goBack = useCallback(() => {
    // The step before the one on screen: the last answered step, or the one before the step being changed.
    const index = changing ? path.findIndex((s) => s.nodeId === changing.step.nodeId) - 1 : path.length - 1;
    const step = path[index];
    if (!step) return;
    const earlier = recallQuestion(caseId, step.nodeId);
    if (!earlier) {
      problems.setForm(
        'That question cannot be shown again in this browser tab. Carry on from the current question.',
      );
      return;
    }
    setChanging({ node: earlier, step });
  }, [caseId, changing, path, problems]);

  const changeStep = (step: TriagePathStep) => {
    const earlier = recallQuestion(caseId, step.nodeId);
    if (!earlier) {
      problems.setForm(
        'That question cannot be shown again in this browser tab. Carry on from the current question.',
      );
      return;
    }
    setChanging({ node: earlier, step });
  };

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.altKey || event.ctrlKey || event.metaKey || typingInField(event.target)) return;
      // Only while the runner is on screen and no dialog is open.
      if (document.querySelector('[role="dialog"]')) return;
      if (event.key === 'b' || event.key === 'B' || event.key === 'Backspace') {
        event.preventDefault();
        goBack();
        return;
      }
      const digit = /^[0-9]$/.test(event.key) ? Number(event.key) : null;
      if (node.type === 'single_choice' && digit !== null && digit >= 1) {
        const option = node.options[digit - 1];
        if (option) {
          event.preventDefault();
          void submit(option.id);
        }
      } else if (node.type === 'multi_choice') {
        if (digit !== null && digit >= 1) {
          const option = node.options[digit - 1];
          if (option) {
            event.preventDefault();
            setSelected((s) =>
              s.includes(option.id) ? s.filter((x) => x !== option.id) : [...s, option.id],
            );
          }
        } else if (digit === 0) {
          event.preventDefault();
          void submit([]);
        } else if (event.key === 'Enter' && !(event.target instanceof HTMLButtonElement)) {
          event.preventDefault();
          void submit(node.options.filter((o) => selected.includes(o.id)).map((o) => o.id));
        }
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [node, selected, submit, goBack]);

  const submitNumeric = (event: FormEvent) => {
    event.preventDefault();
    if (node.type !== 'numeric') return;
    const value = typeof numeric === 'number' ? numeric : Number(String(numeric).trim());
    if (String(numeric).trim() === '' || !Number.isFinite(value))
      return problems.setField('value', `Enter a number from ${node.min} to ${node.max} ${node.unit}.`);
    void submit(value);
  };

  return (
    <Group align="flex-start" wrap="wrap" gap="lg">
      <Paper withBorder p="md" style={{ flex: '2 1 420px' }} aria-busy={busy}>
        {result.content.sample && <SampleNotice text={result.content.label} compact />}
        <Text size="sm" c="dimmed">
          {node.section === 'life_threatening'
            ? 'Life-threatening symptoms check'
            : result.content.pathwayTitle}{' '}
          · question{' '}
          {changing ? path.findIndex((s) => s.nodeId === changing.step.nodeId) + 1 : path.length + 1}
        </Text>
        {changing && (
          <Badge color="orange" variant="light" mt={4}>
            Changing an earlier answer (was: {changing.step.answer})
          </Badge>
        )}
        <Title order={2} size="h3" ref={headingRef} tabIndex={-1} mt="xs" id="triage-question">
          {node.text}
        </Title>
        {node.help && <Text mt={4}>{node.help}</Text>}
        <FormAlert message={problems.form} />
        {unsent && (
          <Alert
            color="orange"
            variant="light"
            mt="sm"
            role="alert"
            title="Answer not saved yet"
            data-testid="answer-not-saved"
          >
            Your answer “{unsent.words}” is not saved: the server is not answering. It is kept here and sent
            by itself when the server answers again; the next question comes then. Stay with the caller.
          </Alert>
        )}
        {problems.field('value') && node.type !== 'numeric' && (
          <Text c="red.9" role="alert" mt="xs">
            {problems.field('value')}
          </Text>
        )}
        <div role="group" aria-labelledby="triage-question">
          {node.type === 'single_choice' && (
            <Stack gap="xs" mt="md">
              {node.options.map((o, i) => (
                <Button
                  key={o.id}
                  variant={changing?.step.value === o.id ? 'filled' : 'default'}
                  justify="flex-start"
                  size="md"
                  onClick={() => void submit(o.id)}
                  disabled={busy}
                  styles={{ label: { whiteSpace: 'normal', textAlign: 'left' } }}
                  h="auto"
                  py={8}
                >
                  {i < 9 && <kbd aria-hidden="true">{i + 1}</kbd>}&nbsp;&nbsp;{o.label}
                </Button>
              ))}
            </Stack>
          )}
          {node.type === 'multi_choice' && (
            <Stack gap="xs" mt="md">
              <Text size="sm">Choose all that apply, then confirm.</Text>
              {node.options.map((o, i) => (
                <Checkbox
                  key={o.id}
                  size="md"
                  checked={selected.includes(o.id)}
                  onChange={(e) => {
                    const on = e.currentTarget.checked;
                    setSelected((s) => (on ? [...s, o.id] : s.filter((x) => x !== o.id)));
                  }}
                  label={
                    <>
                      {i < 9 && <kbd aria-hidden="true">{i + 1}</kbd>}&nbsp;&nbsp;{o.label}
                    </>
                  }
                />
              ))}
              <Group mt="xs">
                <Button
                  onClick={() =>
                    void submit(node.options.filter((o) => selected.includes(o.id)).map((o) => o.id))
                  }
                  disabled={busy || selected.length === 0}
                >
                  Confirm selected (Enter)
                </Button>
                <Button variant="default" onClick={() => void submit([])} disabled={busy}>
                  None of these (0)
                </Button>
              </Group>
            </Stack>
          )}
          {node.type === 'numeric' && (
            <form onSubmit={submitNumeric} noValidate>
              <Group align="flex-end" mt="md">
                <NumberInput
                  label={`Answer in ${node.unit}`}
                  description={`From ${node.min} to ${node.max}${node.integer ? ', whole number' : ''}`}
                  value={numeric}
                  onChange={setNumeric}
                  min={node.min}
                  max={node.max}
                  allowDecimal={!node.integer}
                  error={problems.field('value')}
                  ref={numberRef}
                />
                <Button type="submit" loading={busy}>
                  Record answer
                </Button>
              </Group>
            </form>
          )}
        </div>
        <Group mt="md" gap="xs">
          <Button
            variant="subtle"
            onClick={goBack}
            disabled={busy || (changing ? path[0]?.nodeId === changing.step.nodeId : path.length === 0)}
          >
            Back: change the previous answer (B)
          </Button>
          {changing && (
            <Button variant="subtle" onClick={() => setChanging(null)}>
              Keep the earlier answer
            </Button>
          )}
        </Group>
        <Text size="sm" c="dimmed" mt="xs" id="triage-keys">
          Keys:{' '}
          {node.type === 'numeric'
            ? 'type the number and press Enter'
            : node.type === 'multi_choice'
              ? 'number keys tick options, Enter confirms, 0 for none'
              : 'number keys answer'}{' '}
          · B or Backspace goes back.
        </Text>
      </Paper>
      <TriagePath path={path} onChange={changeStep} current={changing?.step.nodeId ?? null} />
    </Group>
  );
}

export function TriagePath({
  path,
  onChange,
  current = null,
}: {
  path: TriagePathStep[];
  onChange?: (step: TriagePathStep) => void;
  current?: string | null;
}) {
  return (
    <Paper
      withBorder
      p="md"
      style={{ flex: '1 1 280px' }}
      component="section"
      aria-labelledby="triage-path-heading"
    >
      <Title order={2} size="h4" id="triage-path-heading">
        Path so far
      </Title>
      {path.length === 0 ? (
        <Text size="sm" mt="xs">
          No answers yet.
        </Text>
      ) : (
        <List type="ordered" spacing="xs" mt="xs" size="sm" data-testid="triage-path">
          {path.map((step) => (
            <List.Item key={step.nodeId} fw={current === step.nodeId ? 700 : undefined}>
              {step.question} <strong>{step.answer}</strong>
              {onChange && (
                <Button
                  variant="subtle"
                  size="compact-xs"
                  ml={4}
                  onClick={() => onChange(step)}
                  aria-label={`Change the answer to: ${step.question}`}
                >
                  Change
                </Button>
              )}
            </List.Item>
          ))}
        </List>
      )}
    </Paper>
  );
}
