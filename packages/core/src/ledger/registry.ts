import type { z } from 'zod';
import { UnknownEventTypeError, ValidationError, type FieldIssue } from '../errors.ts';

/**
 * One version of one event type. Payloads are checked against `schema` when appended and again
 * when imported from another node, so no unreadable or malformed fact enters the ledger.
 */
export interface EventTypeDefinition<S extends z.ZodType = z.ZodType> {
  type: string;
  v: number;
  schema: S;
  /**
   * The entity the event is about (a case id, a node id…), or null. Projections refold one
   * subject's events when an event for it arrives out of ledger order.
   */
  subjectOf?: (payload: z.infer<S>) => string | null;
  description?: string;
}

export function defineEventType<S extends z.ZodType>(def: EventTypeDefinition<S>): EventTypeDefinition<S> {
  return def;
}

export function zodIssuesToFieldIssues(error: z.ZodError, prefix: string): FieldIssue[] {
  return error.issues.map((issue) => ({
    path: [prefix, ...issue.path.map(String)].filter((p) => p !== '').join('.'),
    message: issue.message,
  }));
}

export class EventRegistry {
  private readonly definitions = new Map<string, EventTypeDefinition>();

  register(...defs: EventTypeDefinition[]): this {
    for (const def of defs) {
      const key = `${def.type}@${def.v}`;
      if (this.definitions.has(key)) throw new Error(`event type ${key} is registered twice`);
      this.definitions.set(key, def);
    }
    return this;
  }

  get(type: string, v: number): EventTypeDefinition {
    const def = this.definitions.get(`${type}@${v}`);
    if (!def) throw new UnknownEventTypeError(type, v);
    return def;
  }

  has(type: string, v: number): boolean {
    return this.definitions.has(`${type}@${v}`);
  }

  /** Newest registered version of a type, used when appending. */
  latestVersion(type: string): number {
    let latest = 0;
    for (const def of this.definitions.values()) if (def.type === type && def.v > latest) latest = def.v;
    if (latest === 0) throw new UnknownEventTypeError(type, 0);
    return latest;
  }

  /** Checks a payload and returns the parsed value; field paths in errors start with `payload`. */
  parsePayload(type: string, v: number, payload: unknown): Record<string, unknown> {
    const def = this.get(type, v);
    const result = def.schema.safeParse(payload);
    if (!result.success) throw new ValidationError(zodIssuesToFieldIssues(result.error, 'payload'));
    return result.data as Record<string, unknown>;
  }

  subjectOf(type: string, v: number, payload: unknown): string | null {
    const def = this.get(type, v);
    return def.subjectOf ? def.subjectOf(payload) : null;
  }

  all(): EventTypeDefinition[] {
    return [...this.definitions.values()];
  }
}
