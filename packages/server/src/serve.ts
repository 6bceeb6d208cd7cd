import type { HoldfastConfig } from './config.ts';
import { StoreUnavailableError } from './store/primary.ts';
import { registerInOldProviders } from './accounts/providers.ts';
import { buildHoldfastApp } from './http/holdfast-app.ts';
import { createLogger } from './http/logger.ts';
import { DEFAULT_HTTP_LIMITS } from './http/app.ts';
import { DEFAULT_FAIR_USE } from './http/fair-use.ts';
import { DEFAULT_THROTTLE } from './auth/throttle.ts';
import { openNode } from './node/node.ts';
import { CommitFanIn } from './node/commit-fan-in.ts';
import { sessionNotices } from './auth/sessions.ts';
import { signInNotices } from './auth/throttle-notices.ts';
import { createHubRunner } from './sync/runner.ts';
import { SyncStatusStore } from './sync/status.ts';
import { PeriodicPackWriter } from './downtime/writer.ts';
import { DeliveryWorker } from './messaging/delivery.ts';
import { HttpTransport } from './messaging/transport-http.ts';
import { MailboxTransport } from './messaging/transport-mailbox.ts';
import { IntegrityMonitor, startupIntegrityCheck } from './node/integrity.ts';

/** Runs a node until SIGINT/SIGTERM: HTTP, periodic checkpoints, clean shutdown. */
export async function serve(config: HoldfastConfig, onListening?: (url: string) => void): Promise<void> {
  const logger = createLogger(config.logLevel);
  const node = await openNode(config, {
    purpose: 'holdfast serve',
    onRebuildProgress: (done, total) => logger.info({ done, total }, 'rebuilding projections'),
  });
  // Providers made before `holdfast providers add` get this node's registration in their chain.
  // A node that cannot write now still starts (to serve reads); the next start tries again.
  const registeredIn = await registerInOldProviders(node).catch((error: unknown) => {
    logger.error({ err: error }, 'registering this node in the chains of older providers failed');
    return [];
  });
  for (const tenant of registeredIn)
    logger.warn({ tenant }, 'registered this node in the chain of a provider made without it');
  // Chains and projections checked against the ledger before anyone is served, then periodically.
  const integrityMonitor = new IntegrityMonitor(
    node,
    logger,
    (config.integrityCheckMinutes ?? 60) * 60_000,
    config.verifyWorkers,
  );
  try {
    await startupIntegrityCheck(node, logger, integrityMonitor);
  } catch (error) {
    await node.close();
    throw error;
  }
  integrityMonitor.start();
  // On PostgreSQL other hub processes may share the database: their commits reach this process's
  // caches and live streams as its own do (a single process hears nothing and pays one connection).
  const fanIn =
    node.store.dialect === 'postgres'
      ? new CommitFanIn(node.ledger, () => node.store.primaryUrl(), {
          logger,
          // Their session notices too (sessions are kept in this process while they are heard), and
          // their sign-in attempts (one throttle across the processes).
          channels: [sessionNotices(node.store), signInNotices(node.store)],
        })
      : null;
  try {
    await fanIn?.start();
  } catch (error) {
    await integrityMonitor.stop();
    await node.close();
    throw error;
  }
  const origin = `http://localhost:${config.port}`;
  // A site syncs with its hub in the background; nothing a user does waits for it.
  const syncRunner = createHubRunner(
    node,
    { intervalSeconds: config.syncIntervalSeconds, maxBackoffSeconds: config.syncMaxBackoffSeconds },
    (o) => {
      if (o.ok) logger.debug({ pulled: o.result.pulled, pushed: o.result.pushed }, 'sync round');
      else if (o.diagnosis.problem === 'history_refused')
        logger.error(
          { problem: o.diagnosis.problem, detail: o.error.message },
          "SYNC ALARM: the hub refuses this node's own history; nothing recorded here reaches the hub (see GET /api/v1/sync/status)",
        );
      else logger.warn({ problem: o.diagnosis.problem, detail: o.error.message }, 'sync round failed');
    },
  );
  const { app, downtime } = await buildHoldfastApp(node, {
    logger,
    syncPeerPositions: () => syncRunner?.peerPositions ?? null,
    ...(config.protocolsDir ? { protocolsDir: config.protocolsDir } : {}),
    downtimeContacts: config.downtimeContacts ?? [],
    inboundCredentials: config.inboundCredentials ?? [],
    telephonyCredentials: config.telephonyCredentials ?? [],
    ...(config.inboundValidationMinutes ? { inboundValidationMinutes: config.inboundValidationMinutes } : {}),
    ...(config.callOpenTooLongMinutes ? { callOpenTooLongMinutes: config.callOpenTooLongMinutes } : {}),
    ...(config.prescriptionFailAfterSeconds
      ? { prescriptionFailAfterMs: config.prescriptionFailAfterSeconds * 1000 }
      : {}),
    passkeys: { rpId: 'localhost', rpName: 'Holdfast', origins: [origin, `http://127.0.0.1:${config.port}`] },
    throttle: {
      ...DEFAULT_THROTTLE,
      perAddressPerMinute: config.signInFailuresPerAddressPerMinute ?? DEFAULT_THROTTLE.perAddressPerMinute,
    },
    httpLimits: {
      trustedProxies: config.trustedProxies ?? [],
      requestTimeoutMs: (config.requestTimeoutSeconds ?? DEFAULT_HTTP_LIMITS.requestTimeoutMs / 1000) * 1000,
      idleTimeoutMs: (config.idleTimeoutSeconds ?? DEFAULT_HTTP_LIMITS.idleTimeoutMs / 1000) * 1000,
      maxConnections: config.maxConnections ?? DEFAULT_HTTP_LIMITS.maxConnections,
    },
    fairUse: { ...DEFAULT_FAIR_USE, streamsPerNode: config.maxStreams ?? DEFAULT_FAIR_USE.streamsPerNode },
    ...(config.operatorTokenSha256 ? { operatorTokenSha256: config.operatorTokenSha256 } : {}),
  });
  const tenant = node.identity.tenant;
  // Messages to other systems go out from every node, the hub's or not: a site cut off from its hub
  // still delivers its own ambulance requests directly.
  const delivery = new DeliveryWorker(
    { store: node.store, ledger: node.ledger, clock: node.clock, tenant, logger },
    {
      http: new HttpTransport({ clientCertificates: config.messagingClientCertificates ?? {} }),
      mailbox: config.messagingMailboxRoot
        ? new MailboxTransport({ root: config.messagingMailboxRoot })
        : null,
    },
  );
  // A lasting sync alarm is said again at every start, not only at the round that raised it.
  for (const alarm of await new SyncStatusStore(node.store, node.clock).activeAlarms(tenant))
    logger.error(
      { alarm: alarm.kind, raisedAt: alarm.raisedAt, detail: alarm.message, advice: alarm.advice },
      'SYNC ALARM still raised: nothing recorded here reaches the hub until it is dealt with',
    );
  // The "every T seconds" half of the checkpoint rule: a quiet node still seals what it wrote.
  const checkpointTimer = setInterval(() => {
    node.ledger.checkpointNow(tenant).catch((error: unknown) =>
      // While the database fails over the store reports itself (on /health); the next tick seals.
      error instanceof StoreUnavailableError
        ? logger.warn({ problem: error.message }, 'checkpoint not signed: the database is not reachable')
        : logger.error({ err: error }, 'checkpoint failed'),
    );
  }, config.checkpointIntervalSeconds * 1000);
  checkpointTimer.unref();
  const packWriter = config.downtimePackDir
    ? new PeriodicPackWriter({
        dir: config.downtimePackDir,
        everyMinutes: config.downtimePackEveryMinutes ?? 15,
        keep: config.downtimePackKeep ?? 5,
        clock: node.clock,
        logger,
        // The application's pack service: with the home visits and appointments sections.
        make: async () =>
          (await downtime.forNode(tenant, { trigger: 'timer', actor: `node:${node.identity.node}` })).pdf,
      })
    : null;
  packWriter?.start();

  const address = await app.listen({ port: config.port, host: config.host });
  const shownHost = config.host === '0.0.0.0' || config.host === '127.0.0.1' ? 'localhost' : config.host;
  const url = address.replace(/\/\/[^:/]+/, `//${shownHost}`);
  console.log(
    `Holdfast node ${node.identity.node} (${node.identity.role}, tenant ${tenant}, ${node.store.dialect} store) listening on ${url}`,
  );
  console.log(
    `  health: ${url}/health   metrics: ${url}/metrics${config.operatorTokenSha256 ? ' (operator token)' : ' (off: no operator token set)'}`,
  );
  onListening?.(url);
  delivery.start();
  if (syncRunner) {
    console.log(`  syncing with hub ${syncRunner.peer.node} at ${syncRunner.peer.url}`);
    syncRunner.start();
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    clearInterval(checkpointTimer);
    await integrityMonitor.stop();
    await syncRunner?.stop();
    await delivery.stop();
    await packWriter?.stop();
    await app.close();
    await fanIn?.stop();
    await node.ledger.checkpointNow(tenant).catch(() => null);
    await node.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
