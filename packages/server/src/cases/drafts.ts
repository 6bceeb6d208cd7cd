import type { Clock } from '@holdfast/core';
import type { Store, Tx, Db } from '../store/store.ts';

/**
 * What a clinician has typed into a consultation and not yet saved: the notes and the observation
 * fields as typed. Not a clinical fact (nobody has vouched for it), so it is not in the ledger and
 * nobody else reads it; it only spares the author from losing their typing to a reload, a crash or
 * an idle sign-out.
 */
export interface ConsultationDraft {
  history?: string;
  examination?: string;
  assessment?: string;
  plan?: string;
  safetyNetting?: string;
  /** The observation inputs as typed (strings), keyed by field. */
  observations?: Record<string, string>;
}

interface ConsultationDraftsTable {
  tenant: string;
  user_id: string;
  case_id: string;
  content: string;
  updated_at: number;
}

function draftsDb(db: Db | Tx) {
  return db.withTables<{ consultation_drafts: ConsultationDraftsTable }>();
}

/**
 * A draft is kept this long after its last change: past a shift and the next, typing nobody came
 * back to is not kept with patient details in it.
 */
export const DRAFT_KEPT_MS = 24 * 3600_000;

/**
 * Node-local drafts, one per (user, case), in `consultation_drafts` (migration 5) on the server: a
 * shared call-centre PC keeps nothing of a patient after sign-out, and the draft is there again after
 * a reload or the next sign-in on this node. Replaced as the clinician types; deleted when the
 * consultation is saved; forgotten after DRAFT_KEPT_MS.
 */
export class DraftStore {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async get(
    tenant: string,
    userId: string,
    caseId: string,
  ): Promise<{ draft: ConsultationDraft; updatedAt: string } | null> {
    const row = await this.store.withTenant(tenant, (trx) =>
      draftsDb(trx)
        .selectFrom('consultation_drafts')
        .select(['content', 'updated_at'])
        .where('tenant', '=', tenant)
        .where('user_id', '=', userId)
        .where('case_id', '=', caseId)
        .executeTakeFirst(),
    );
    if (!row || Number(row.updated_at) < this.clock.nowMs() - DRAFT_KEPT_MS) return null;
    return {
      draft: JSON.parse(row.content) as ConsultationDraft,
      updatedAt: new Date(Number(row.updated_at)).toISOString(),
    };
  }

  async put(tenant: string, userId: string, caseId: string, draft: ConsultationDraft): Promise<string> {
    const now = this.clock.nowMs();
    const content = JSON.stringify(draft);
    await this.store.withTenant(tenant, async (trx) => {
      // Old drafts of this provider go as new ones come: nothing else needs to sweep them.
      await draftsDb(trx)
        .deleteFrom('consultation_drafts')
        .where('tenant', '=', tenant)
        .where('updated_at', '<', now - DRAFT_KEPT_MS)
        .execute();
      await draftsDb(trx)
        .insertInto('consultation_drafts')
        .values({ tenant, user_id: userId, case_id: caseId, content, updated_at: now })
        .onConflict((oc) =>
          oc.columns(['tenant', 'user_id', 'case_id']).doUpdateSet({ content, updated_at: now }),
        )
        .execute();
    });
    return new Date(now).toISOString();
  }

  async delete(tenant: string, userId: string, caseId: string): Promise<void> {
    await this.store.withTenant(tenant, (trx) =>
      draftsDb(trx)
        .deleteFrom('consultation_drafts')
        .where('tenant', '=', tenant)
        .where('user_id', '=', userId)
        .where('case_id', '=', caseId)
        .execute(),
    );
  }
}
