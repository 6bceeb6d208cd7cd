import { SyncHttpError } from './http-transport.ts';
import { SyncRefusedError } from './protocol.ts';
import { SignatureRefusedError } from './signing.ts';

/**
 * What went wrong in a failed sync round, in words an operator can act on. The runner stores the
 * problem with the round's outcome; the status page shows its message and advice.
 *
 * - `hub_unreachable`: no answer (network, timeout, the hub down or answering 5xx).
 * - `hub_key_changed`: an answer came, but not signed by the hub key pinned at enrolment.
 * - `not_registered_at_hub`: the hub answered that it does not know this site's key.
 * - `history_refused`: this site's own chain and the hub's copy of it (witnessed by the hub)
 *   disagree, so the hub will take none of this site's new events. The loud, lasting alarm.
 * - `hub_history_bad`: the hub sent history that fails this site's checks (a hub store edited).
 * - `refused`: any other refusal (protocol version, schema version, tenant).
 */
export type SyncProblem =
  | 'hub_unreachable'
  | 'hub_key_changed'
  | 'not_registered_at_hub'
  | 'history_refused'
  | 'hub_history_bad'
  | 'refused';

export interface SyncDiagnosis {
  problem: SyncProblem;
  /** What happened and what it means. */
  message: string;
  /** The one safe way on. */
  advice: string;
}

/**
 * Reads a failed round's error. `self` is this node's id (a refusal about its own chain is the
 * history alarm), `hub` the hub's id as pinned.
 */
export function diagnoseSyncFailure(error: unknown, self: string, hub: string): SyncDiagnosis {
  if (error instanceof SignatureRefusedError) {
    // Thrown here while checking the hub's answer: it came, but not from the key this site pinned.
    return {
      problem: 'hub_key_changed',
      message:
        `the hub answers, but not with the key pinned when this site enrolled (${error.message}). ` +
        'Either the hub was re-initialised with a new key, or something else is answering in its place. ' +
        'This site keeps working on its own and keeps all its data; nothing is sent to or taken from the hub until this is settled.',
      advice:
        `Ask the hub's operator for the hub's node id and public key (\`holdfast nodes list\` on the hub, the line of its own node), ` +
        'confirm it with them by phone or in person, not over the channel in question, then run on this site ' +
        '`holdfast nodes repin-hub --node <hub id> --public-key <key> --confirm` and restart it. ' +
        'Do not re-enrol this site: it is initialised already, and its data stays where it is. ' +
        `If the hub kept its node id (${hub}) but lost its data, a re-pin cannot help (its new chain would fork from the one this site holds): ` +
        'the hub must be restored from its backup, which keeps its key, or made anew with a new node id.',
    };
  }
  if (error instanceof SyncRefusedError) {
    if (error.reason === 'bad_history') {
      const ownChain = error.issues.some((i) => i.node === self) || error.message.includes(`node ${self} `);
      if (ownChain) {
        const byHub = error.refusedBy !== undefined && error.refusedBy !== self;
        return {
          problem: 'history_refused',
          message:
            (byHub
              ? `the hub (${error.refusedBy}) refuses this site's own history: ${error.message}. `
              : `the hub's copy of this site's own history differs from this site's: ${error.message}. `) +
            "This site's chain no longer matches what the hub witnessed earlier, so the hub will not take any of this site's events — including everything recorded here from now on.",
          advice:
            'Treat this as a security incident: record new work on another site or on the hub (or on paper with the downtime pack), ' +
            "keep this server and its data untouched for investigation, and tell the provider's technical lead. " +
            'Once it has been dealt with, an operator clears the alarm with `holdfast nodes clear-sync-alarm --reason <text>`.',
        };
      }
      return {
        problem: 'hub_history_bad',
        message: `the hub sent history that fails this site's checks: ${error.message}. Nothing of it was stored.`,
        advice:
          "Tell the hub's operator: the hub's store may have been edited. This site keeps working and keeps its data.",
      };
    }
    return {
      problem: 'refused',
      message: `the hub refused the exchange (${error.reason}): ${error.message}`,
      advice:
        error.reason === 'protocol_version' || error.reason === 'schema_version'
          ? 'Install the same Holdfast version on this site and on the hub.'
          : "Tell the hub's operator the reason shown.",
    };
  }
  if (error instanceof SyncHttpError) {
    if (error.code === 'sync_unknown_node')
      return {
        problem: 'not_registered_at_hub',
        message: `the hub ${hub} answers but does not know this site (node ${self}): ${error.message}`,
        advice:
          `If the hub was restored from backup this clears by itself once a peer tops it up; if it was re-initialised, its operator registers this site's key on it ` +
          `(\`holdfast nodes register --node ${self} --public-key <this site's key> --role site\`; this site's key is in its node.json) ` +
          'and this site checks the hub key (see hub_key_changed). Do not re-enrol this site.',
      };
    if (error.status >= 500 || error.status === 0)
      return unreachable(`the hub answered ${error.status}: ${error.message}`);
    return {
      problem: 'refused',
      message: `the hub refused the request (${error.code}): ${error.message}`,
      advice: "Tell the hub's operator the reason shown; this site keeps working and keeps its data.",
    };
  }
  return unreachable((error as Error | undefined)?.message ?? String(error));
}

function unreachable(detail: string): SyncDiagnosis {
  return {
    problem: 'hub_unreachable',
    message: `the hub cannot be reached: ${detail}`,
    advice:
      'Carry on working here: events wait and are sent when the hub answers again. If it stays away, check the network and the hub.',
  };
}
