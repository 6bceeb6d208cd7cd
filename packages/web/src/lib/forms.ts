import { useCallback, useState } from 'react';
import { ApiError } from './api.ts';

/**
 * Bad input is answered next to the field: the server's problem+json names each field by its path
 * in the request body, and a form maps those paths to its inputs. What names no field of the form
 * (or a refusal that is not about input) is shown at the top of the form.
 */
export interface FormProblems {
  fields: Record<string, string>;
  form: string | null;
  /** The error of field `path` (exact path or a child of it, e.g. `caller` covers `caller.name`). */
  field(path: string): string | undefined;
  fromError(error: unknown, knownFields: readonly string[]): void;
  setField(path: string, message: string | null): void;
  setForm(message: string | null): void;
  clear(): void;
}

/** The server's messages start with the field name left out ("must be …"); say which field. */
export function sentence(message: string): string {
  const trimmed = message.trim();
  return trimmed.charAt(0).toUpperCase() + trimmed.slice(1) + (/[.!?]$/.test(trimmed) ? '' : '.');
}

export function useFormProblems(): FormProblems {
  const [fields, setFields] = useState<Record<string, string>>({});
  const [form, setFormState] = useState<string | null>(null);

  const fromError = useCallback((error: unknown, knownFields: readonly string[]) => {
    if (error instanceof ApiError) {
      const byPath = error.fieldErrors();
      const next: Record<string, string> = {};
      const unplaced: string[] = [];
      for (const [path, message] of Object.entries(byPath)) {
        const known = knownFields.find((f) => path === f || path.startsWith(`${f}.`));
        if (known) next[known] = next[known] ?? sentence(message);
        else unplaced.push(path ? `${path}: ${message}` : message);
      }
      setFields(next);
      if (unplaced.length > 0) setFormState(`${error.title}. ${unplaced.map(sentence).join(' ')}`);
      else if (Object.keys(next).length === 0) setFormState(sentence(error.plain()));
      else setFormState('Some answers need correcting: see the messages next to the fields.');
    } else {
      setFields({});
      setFormState(error instanceof Error ? error.message : 'Something went wrong. Try again.');
    }
  }, []);

  const setField = useCallback((path: string, message: string | null) => {
    setFields((previous) => {
      const next = { ...previous };
      if (message) next[path] = message;
      else delete next[path];
      return next;
    });
  }, []);

  return {
    fields,
    form,
    field: (path) => fields[path],
    fromError,
    setField,
    setForm: setFormState,
    clear: () => {
      setFields({});
      setFormState(null);
    },
  };
}
