import { randomUUID } from 'node:crypto';
import {
  ConflictError,
  ForbiddenError,
  NotFoundError,
  ValidationError,
  compareShifts,
  nextOnDuty,
  onDuty,
  staffingGaps,
  type Clock,
  type Role,
  type RotaLocation,
  type Shift,
  type ShiftInput,
  type StaffingMinimum,
} from '@holdfast/core';
import { parseRotaCsv } from '@holdfast/core/rota/csv';
import type { AccountsService } from '../accounts/service.ts';
import { actorOf, type RequestContext } from '../http/context.ts';
import type { EventDraft, Ledger } from '../ledger/ledger.ts';
import type { Store } from '../store/store.ts';
import { rotaDb, type RotaMinimumsTable, type RotaShiftsTable } from './projection.ts';

const HOUR_MS = 3_600_000;
/** The longest span one read of the rota or its gaps may cover (a month and a bit). */
export const MAX_ROTA_SPAN_MS = 35 * 24 * HOUR_MS;
/** Roles that are offered CAS work when the rota covers a site. */
const CLINICAL_ROLES: readonly Role[] = ['clinician', 'prescriber'];

export interface ShiftView extends Shift {
  start: string;
  end: string;
  displayName: string;
}

export interface MinimumView extends StaffingMinimum {
  minimumId: string;
}

export interface ShiftRequest {
  userId?: string | undefined;
  userName?: string | undefined;
  role: Role;
  location: RotaLocation;
  startMs: number;
  endMs: number;
}

/**
 * The rota (C12): shifts entered or imported, who is on duty now and next, minimum staffing per role
 * and location and the gaps against them. Other modules ask it who is on duty (the CAS queue offers
 * work only to clinicians on duty where a rota covers the site; dispatch offers a car only while its
 * crew is on shift).
 */
export class RotaService {
  constructor(
    private readonly store: Store,
    private readonly ledger: Ledger,
    private readonly clock: Clock,
    private readonly accounts: AccountsService,
  ) {}

  nowMs(): number {
    return this.clock.nowMs();
  }

  /** Shifts overlapping [fromMs, toMs), in rota order (cancelled ones left out). */
  async shifts(tenant: string, fromMs: number, toMs: number): Promise<Shift[]> {
    const rows = await this.store.withTenant(tenant, (trx) =>
      rotaDb(trx)
        .selectFrom('rota_shifts')
        .selectAll()
        .where('tenant', '=', tenant)
        .where('cancelled', '=', 0)
        .where('end_ms', '>', fromMs)
        .where('start_ms', '<', toMs)
        .limit(50_000)
        .execute(),
    );
    return rows.map(toShift).sort(compareShifts);
  }

  async list(ctx: RequestContext, fromMs: number, toMs: number): Promise<ShiftView[]> {
    checkSpan(fromMs, toMs);
    return this.views(ctx.tenant, await this.shifts(ctx.tenant, fromMs, toMs));
  }

  private async views(tenant: string, shifts: Shift[]): Promise<ShiftView[]> {
    const names = await this.accounts.displayNames(
      tenant,
      shifts.map((s) => s.userId),
    );
    return shifts.map((s) => ({
      ...s,
      start: new Date(s.startMs).toISOString(),
      end: new Date(s.endMs).toISOString(),
      displayName: names.get(s.userId) ?? s.userName,
    }));
  }

  /** Staff a shift manager may put on the rota (names and roles only). */
  async staff(ctx: RequestContext) {
    return (await this.accounts.list(ctx.tenant))
      .filter((u) => !u.disabled)
      .map((u) => ({ userId: u.userId, userName: u.username, displayName: u.displayName, roles: u.roles }));
  }

  /** Puts one shift on the rota; refused (400 naming the field) when the person is unknown or already on shift then. */
  async plan(ctx: RequestContext, input: ShiftRequest): Promise<ShiftView> {
    const user = await this.resolveUser(ctx.tenant, input, 'body');
    const shift: Shift = {
      shiftId: randomUUID(),
      userId: user.userId,
      userName: user.username,
      role: input.role,
      location: input.location,
      startMs: input.startMs,
      endMs: input.endMs,
    };
    await this.refuseOverlap(ctx.tenant, [shift], () => 'body.startMs');
    await this.ledger.append([this.plannedDraft(ctx, shift, 'entered')]);
    return (await this.views(ctx.tenant, [shift]))[0]!;
  }

  async cancel(ctx: RequestContext, shiftId: string, reason: string): Promise<ShiftView> {
    const row = await this.store.withTenant(ctx.tenant, (trx) =>
      rotaDb(trx)
        .selectFrom('rota_shifts')
        .selectAll()
        .where('tenant', '=', ctx.tenant)
        .where('shift_id', '=', shiftId)
        .executeTakeFirst(),
    );
    if (!row) throw new NotFoundError('shift');
    if (row.cancelled) throw new ConflictError('the shift is cancelled already');
    await this.ledger.append([
      { tenant: ctx.tenant, type: 'rota.shift_cancelled', actor: actorOf(ctx), payload: { shiftId, reason } },
    ]);
    return (await this.views(ctx.tenant, [toShift(row)]))[0]!;
  }

  /**
   * Imports a rota file whole or not at all: any problem (a bad cell, an unknown user, a shift that
   * overlaps the same person's shift in the file or on the rota) is a 400 listing each by line and
   * column, and nothing is stored.
   */
  async import(ctx: RequestContext, csv: string): Promise<{ imported: number; shifts: ShiftView[] }> {
    const parsed = parseRotaCsv(csv);
    const problems = [...parsed.problems];
    const shifts: (Shift & { line: number })[] = [];
    if (problems.length === 0) {
      const users = new Map((await this.accounts.list(ctx.tenant)).map((u) => [u.username.toLowerCase(), u]));
      for (const row of parsed.shifts) {
        const user = users.get(row.userName.toLowerCase());
        if (!user || user.disabled) {
          problems.push({ line: row.line, field: 'user', message: 'is not a user of this provider' });
          continue;
        }
        shifts.push({
          line: row.line,
          shiftId: randomUUID(),
          userId: user.userId,
          userName: user.username,
          role: row.role,
          location: row.location,
          startMs: row.startMs,
          endMs: row.endMs,
        });
      }
      if (problems.length === 0)
        try {
          await this.refuseOverlap(ctx.tenant, shifts, (s) => `line ${s.line}: start`);
        } catch (error) {
          if (!(error instanceof ValidationError)) throw error;
          for (const issue of error.issues) {
            const line = Number(/^line (\d+)/.exec(issue.path)?.[1] ?? 0);
            problems.push({ line, field: 'start', message: issue.message });
          }
        }
    }
    if (problems.length > 0) throw new RotaImportError(problems);
    if (shifts.length > 0)
      await this.ledger.append(shifts.map(({ line: _line, ...s }) => this.plannedDraft(ctx, s, 'imported')));
    return { imported: shifts.length, shifts: await this.views(ctx.tenant, shifts) };
  }

  private plannedDraft(ctx: RequestContext, s: Shift, source: 'entered' | 'imported'): EventDraft {
    return {
      tenant: ctx.tenant,
      type: 'rota.shift_planned',
      actor: actorOf(ctx),
      payload: {
        shiftId: s.shiftId,
        userId: s.userId,
        userName: s.userName,
        role: s.role,
        location: { kind: s.location.kind, id: s.location.id },
        startMs: s.startMs,
        endMs: s.endMs,
        source,
      },
    };
  }

  private async resolveUser(tenant: string, input: ShiftRequest, prefix: string) {
    if (input.userId) {
      const user = await this.accounts.get(tenant, input.userId);
      if (!user || user.disabled)
        throw new ValidationError([{ path: `${prefix}.userId`, message: 'is not a user of this provider' }]);
      return user;
    }
    const name = input.userName?.trim().toLowerCase();
    const user = name
      ? (await this.accounts.list(tenant)).find((u) => u.username.toLowerCase() === name)
      : null;
    if (!user || user.disabled)
      throw new ValidationError([
        {
          path: `${prefix}.${input.userName ? 'userName' : 'userId'}`,
          message: input.userName ? 'is not a user of this provider' : 'name the person (userId or userName)',
        },
      ]);
    return user;
  }

  /** One person cannot be on two shifts at once (against the rota and within the new shifts). */
  private async refuseOverlap<S extends Shift>(
    tenant: string,
    shifts: readonly S[],
    pathOf: (s: S) => string,
  ): Promise<void> {
    if (shifts.length === 0) return;
    const from = Math.min(...shifts.map((s) => s.startMs));
    const to = Math.max(...shifts.map((s) => s.endMs));
    const existing = await this.shifts(tenant, from, to);
    const issues: { path: string; message: string }[] = [];
    for (const s of shifts) {
      const clash = existing.find((o) => o.userId === s.userId && o.startMs < s.endMs && s.startMs < o.endMs);
      if (clash)
        issues.push({
          path: pathOf(s),
          message: `overlaps the same person's shift on the rota from ${new Date(clash.startMs).toISOString()}`,
        });
    }
    if (issues.length > 0) throw new ValidationError(issues);
  }

  /** Who is on duty now and who comes on next (per role and location). */
  async now(ctx: RequestContext) {
    const now = this.clock.nowMs();
    const shifts = await this.shifts(ctx.tenant, now - 25 * HOUR_MS, now + 48 * HOUR_MS);
    return {
      now: new Date(now).toISOString(),
      nowMs: now,
      onDuty: await this.views(ctx.tenant, onDuty(shifts, now)),
      next: await this.views(ctx.tenant, nextOnDuty(shifts, now)),
    };
  }

  async minimums(tenant: string): Promise<MinimumView[]> {
    const rows = await this.store.withTenant(tenant, (trx) =>
      rotaDb(trx)
        .selectFrom('rota_minimums')
        .selectAll()
        .where('tenant', '=', tenant)
        .where('minimum', '>', 0)
        .orderBy('location_kind')
        .orderBy('location_id')
        .orderBy('role')
        .execute(),
    );
    return rows.map(toMinimum);
  }

  /** Sets (or with 0 removes) the minimum for a role at a location and time of day. */
  async setMinimum(ctx: RequestContext, input: StaffingMinimum): Promise<MinimumView[]> {
    const key = (m: {
      role: string;
      location_kind: string;
      location_id: string;
      from_local: string | null;
      to_local: string | null;
    }) => [m.role, m.location_kind, m.location_id, m.from_local ?? '', m.to_local ?? ''].join('|');
    const wanted = key({
      role: input.role,
      location_kind: input.location.kind,
      location_id: input.location.id ?? '',
      from_local: input.fromLocal ?? null,
      to_local: input.toLocal ?? null,
    });
    const rows = await this.store.withTenant(ctx.tenant, (trx) =>
      rotaDb(trx).selectFrom('rota_minimums').selectAll().where('tenant', '=', ctx.tenant).execute(),
    );
    const minimumId = rows.find((r) => key(r) === wanted)?.minimum_id ?? randomUUID();
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'rota.minimum_set',
        actor: actorOf(ctx),
        payload: {
          minimumId,
          role: input.role,
          location: { kind: input.location.kind, id: input.location.id },
          minimum: input.minimum,
          fromLocal: input.fromLocal ?? null,
          toLocal: input.toLocal ?? null,
        },
      },
    ]);
    return this.minimums(ctx.tenant);
  }

  /** Where the rota falls short of the minimums in [fromMs, toMs) (default: the next 24 hours). */
  async gaps(ctx: RequestContext, fromMs?: number, toMs?: number) {
    const from = fromMs ?? this.clock.nowMs();
    const to = toMs ?? from + 24 * HOUR_MS;
    checkSpan(from, to);
    const [shifts, minimums] = await Promise.all([
      this.shifts(ctx.tenant, from, to),
      this.minimums(ctx.tenant),
    ]);
    return {
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      gaps: staffingGaps(shifts, minimums, from, to).map((g) => ({
        ...g,
        from: new Date(g.fromMs).toISOString(),
        to: new Date(g.toMs).toISOString(),
      })),
    };
  }

  /**
   * Who may be offered CAS work at a site now: `null` when no clinical shift covers the site (or the
   * CAS) now, so the queue behaves as it did before rotas (everyone with the permission); otherwise the
   * user ids of the clinicians on duty there or in the CAS.
   */
  async clinicianFilter(tenant: string, siteIds: readonly string[]): Promise<Map<string, Set<string>>> {
    const now = this.clock.nowMs();
    const shifts = onDuty(await this.shifts(tenant, now, now + 1), now, { role: CLINICAL_ROLES });
    const cas = shifts.filter((s) => s.location.kind === 'cas').map((s) => s.userId);
    const out = new Map<string, Set<string>>();
    for (const siteId of siteIds) {
      const here = shifts.filter((s) => s.location.kind === 'site' && s.location.id === siteId);
      if (here.length === 0 && cas.length === 0) continue;
      out.set(siteId, new Set([...here.map((s) => s.userId), ...cas]));
    }
    return out;
  }
}

/**
 * The claim guard (a case command hook): where a rota covers the case's site now, only a clinician
 * on duty there (or in the CAS) may take a waiting case.
 */
export function refuseClaimOffDuty(rota: RotaService) {
  return async (
    ctx: { tenant: string; userId: string; system?: true },
    outcome: { row: { site_id: string }; events: readonly { type: string }[] },
  ): Promise<never[]> => {
    if (ctx.system || !outcome.events.some((e) => e.type === 'case.claimed')) return [];
    const covered = (await rota.clinicianFilter(ctx.tenant, [outcome.row.site_id])).get(outcome.row.site_id);
    if (covered && !covered.has(ctx.userId))
      throw new ForbiddenError(
        'you are not on duty on the rota now at this site: the case is offered to the clinicians on duty',
      );
    return [];
  };
}

/** A rota file with problems: 400 listing each by line and column (answered by the route). */
export class RotaImportError extends ValidationError {
  constructor(readonly problems: { line: number; field: string; message: string }[]) {
    super(problems.slice(0, 200).map((p) => ({ path: `line ${p.line}: ${p.field}`, message: p.message })));
  }
}

function checkSpan(fromMs: number, toMs: number): void {
  if (toMs <= fromMs) throw new ValidationError([{ path: 'query.to', message: 'must be after from' }]);
  if (toMs - fromMs > MAX_ROTA_SPAN_MS)
    throw new ValidationError([{ path: 'query.to', message: 'must be at most 35 days after from' }]);
}

function toShift(r: RotaShiftsTable): Shift {
  return {
    shiftId: r.shift_id,
    userId: r.user_id,
    userName: r.user_name,
    role: r.role as Role,
    location: {
      kind: r.location_kind as RotaLocation['kind'],
      id: r.location_id === '' ? null : r.location_id,
    },
    startMs: Number(r.start_ms),
    endMs: Number(r.end_ms),
  };
}

function toMinimum(r: RotaMinimumsTable): MinimumView {
  return {
    minimumId: r.minimum_id,
    role: r.role as Role,
    location: {
      kind: r.location_kind as RotaLocation['kind'],
      id: r.location_id === '' ? null : r.location_id,
    },
    minimum: Number(r.minimum),
    ...(r.from_local ? { fromLocal: r.from_local } : {}),
    ...(r.to_local ? { toLocal: r.to_local } : {}),
  };
}

export type { ShiftInput };
