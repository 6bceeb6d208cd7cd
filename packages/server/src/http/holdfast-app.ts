import { createHash, timingSafeEqual } from 'node:crypto';
import { hasPermission, UnauthenticatedError } from '@holdfast/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { accountRoutes, operatorRoutes } from '../accounts/routes.ts';
import { AccountsService } from '../accounts/service.ts';
import { Auditor } from '../audit/auditor.ts';
import { DEFAULT_DENIAL_LIMITS, DenialAudit, type DenialLimits } from '../audit/denials.ts';
import { auditRoutes } from '../audit/routes.ts';
import { AuditTrailService } from '../audit/trail.ts';
import { authRoutes } from '../auth/routes.ts';
import { passkeyRoutes, type PasskeyConfig } from '../auth/passkeys.ts';
import { DEFAULT_SESSION_POLICY, SessionStore, type SessionPolicy } from '../auth/sessions.ts';
import { DEFAULT_THROTTLE, SignInThrottle, type ThrottleOptions } from '../auth/throttle.ts';
import { shareSignInThrottle } from '../auth/throttle-notices.ts';
import { LedgerIntegrityError } from '../ledger/ledger.ts';
import { warmPasswordHashing } from '../auth/passwords.ts';
import type { HoldfastNode } from '../node/node.ts';
import type { WriteFailure } from '../ledger/write-health.ts';
import { patientRoutes } from '../patients/routes.ts';
import { caseRoutes, triageAndQueueRoutes } from '../cases/routes.ts';
import { adviserRoutes } from '../cases/adviser-routes.ts';
import { paperRecordRoutes } from '../cases/paper-routes.ts';
import { DEFAULT_CALL_OPEN_TOO_LONG_MINUTES, OpenCalls } from '../cases/open-calls.ts';
import { pemRoutes } from '../pem/routes.ts';
import { PemService } from '../pem/service.ts';
import { reportRoutes } from '../reports/iuc-adc.ts';
import { QueueService } from '../cases/queue.ts';
import { TriageService } from '../cases/triage.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../triage/packs.ts';
import { CaseService } from '../cases/service.ts';
import { CaseViews } from '../cases/views.ts';
import { DraftStore } from '../cases/drafts.ts';
import { HeldCaseRelease } from '../cases/held.ts';
import { PatientService } from '../patients/service.ts';
import { downtimeRoutes } from '../downtime/routes.ts';
import { reconciliationRoutes } from '../reconciliation/routes.ts';
import { ReconciliationService } from '../reconciliation/service.ts';
import { DowntimePackService } from '../downtime/service.ts';
import type { KeyContact } from '../downtime/pack-data.ts';
import { installSyncBodyHandling, syncRoutes } from '../sync/routes.ts';
import { SyncStatusStore } from '../sync/status.ts';
import {
  createApp,
  DEFAULT_HTTP_LIMITS,
  registerRoutes,
  SESSION_COOKIE,
  type AppDeps,
  type HttpServerLimits,
  type RouteRegistry,
} from './app.ts';
import { DEFAULT_FAIR_USE, FairUse, type FairUseLimits } from './fair-use.ts';
import { openApiDocument, docsPage } from './openapi.ts';
import { publicRoute } from './routes.ts';
import { actorOf } from './context.ts';
import { webAppRoute } from './web-static.ts';
import { dashboardRoutes } from '../dashboard/routes.ts';
import { messagingRoutes } from '../messaging/routes.ts';
import { MessagingService } from '../messaging/service.ts';
import { handoverRoutes } from '../handover/routes.ts';
import { HandoverService } from '../handover/service.ts';
import { fhirRoutes } from '../fhir/routes.ts';
import { FhirService } from '../fhir/service.ts';
import { inboundRoutes } from '../inbound/routes.ts';
import { InboundService, type InboundCredential } from '../inbound/service.ts';
import { telephonyRoutes } from '../telephony/routes.ts';
import { TelephonyService, type TelephonyCredential } from '../telephony/service.ts';
import { ProviderSettingsService, providerSettingsRoutes } from '../reports/provider-settings.ts';
import { referralRoutes } from '../referrals/routes.ts';
import { ReferralService, type ServiceLookup } from '../referrals/service.ts';
import { directoryRoutes, installDirectoryBodyHandling } from '../directory/routes.ts';
import { requireFormularyDir, SAMPLE_FORMULARY_DIR } from '../prescribing/formulary-files.ts';
import { prescribingRoutes } from '../prescribing/routes.ts';
import { PrescribingService } from '../prescribing/service.ts';
import { bookingRoutes } from '../booking/routes.ts';
import { BookingService, PACK_APPOINTMENT_HOURS } from '../booking/service.ts';
import { DirectoryService } from '../directory/service.ts';
import { rotaRoutes } from '../rota/routes.ts';
import { refuseClaimOffDuty, RotaService } from '../rota/service.ts';
import { dispatchRoutes } from '../dispatch/routes.ts';
import { DispatchService } from '../dispatch/service.ts';
import { dispatchReconciliationSource } from '../dispatch/reconciliation.ts';

export interface HoldfastAppOptions {
  logger: Logger;
  secureCookies?: boolean;
  sessionPolicy?: SessionPolicy;
  throttle?: ThrottleOptions;
  passkeys?: PasskeyConfig;
  /** Directory of the triage protocol pack (default: the shipped sample pack). */
  protocolsDir?: string;
  /** What the hub held at the last sync round (a site's runner), for GET /api/v1/sync/status. */
  syncPeerPositions?: () => ReadonlyMap<string, number> | null;
  /** Test switch: services omit their tenant condition, so only PostgreSQL RLS keeps tenants apart. */
  tenantFilter?: boolean;
  /** Directory of the built browser app (default packages/web/dist); false serves no web app. */
  webDist?: string | false;
  /** Key contacts printed in the downtime pack. */
  downtimeContacts?: readonly KeyContact[];
  /** Other systems that may post messages in (bearer tokens kept as SHA-256), see inbound/. */
  inboundCredentials?: readonly InboundCredential[];
  /** Minutes without activity after which a call with an adviser is listed for the shift manager (20). */
  callOpenTooLongMinutes?: number;
  /** How long a prescription message may go unreceived before it fails (default 10 minutes). */
  prescriptionFailAfterMs?: number;
  /** How often cases held by clinicians whose sessions ended are released (default a minute). */
  heldCaseSweepMs?: number;
  /** Minutes to validate a 999 Category 3/4 call when the request gives no deadline (sample defaults). */
  inboundValidationMinutes?: Readonly<Record<3 | 4, number>>;
  /** Telephony systems that may post call events (bearer tokens kept as SHA-256), see telephony/. */
  telephonyCredentials?: readonly TelephonyCredential[];
  /** Where referrals find the provider's services (default: the node's directory). */
  serviceLookup?: ServiceLookup;
  /** Trusted proxies, request and idle timeouts, connection limit (see app.ts). */
  httpLimits?: HttpServerLimits;
  /** Requests and streams in flight per session, user and node (see fair-use.ts). */
  fairUse?: FairUseLimits;
  /** Coalescing of repeated denials and the point at which a denied client gets 429. */
  denialLimits?: DenialLimits;
  /**
   * SHA-256 (hex) of the operator token: `Authorization: Bearer <token>` reads /metrics and the
   * detail of /health. Without it /metrics is refused to everyone.
   */
  operatorTokenSha256?: string;
  /** Directory of the formulary (default: the shipped sample, not clinically validated). */
  formularyDir?: string;
  /**
   * How often this node applies allocation policies to the sessions of centres it is home to and
   * gives back allocated slots past their cut-off (default 30 s; 0: never, tests call `booking.tick`).
   */
  bookingTimerMs?: number;
}

export interface HoldfastApp {
  app: FastifyInstance;
  registry: RouteRegistry;
  deps: AppDeps;
  accounts: AccountsService;
  patients: PatientService;
  cases: CaseService;
  messaging: MessagingService;
  /** Releases cases held by clinicians who are no longer signed in (run every minute). */
  heldCases: HeldCaseRelease;
  /** Treatment-centre appointments (C6); its timer applies allocation policies and returns slots at the cut-off. */
  booking: BookingService;
  /** The Directory of Services (C10): services, search, postcodes. */
  directory: DirectoryService;
  /** Downtime packs with the other modules' sections (home visits, appointments), for the node's timer too. */
  downtime: DowntimePackService;
}

/** The whole HTTP application of one node: every module's routes over its services. */
export async function buildHoldfastApp(
  node: HoldfastNode,
  options: HoldfastAppOptions,
): Promise<HoldfastApp> {
  await node.store.checkTenantIsolation();
  const filter = { tenantFilter: options.tenantFilter ?? true };
  const sessions = new SessionStore(node.store, node.clock, options.sessionPolicy ?? DEFAULT_SESSION_POLICY);
  const unprotected = await sessions.sessionsWithoutSecondFactor();
  if (unprotected.length > 0) {
    throw new Error(
      `refusing to run: ${unprotected.length} signed-in session(s) belong to users without a second factor; end them (they are revoked by resetting the user's MFA) and investigate how they were created`,
    );
  }
  const accounts = new AccountsService(node.store, node.ledger, sessions, node.providerKeys, filter);
  const auditor = new Auditor(node.ledger);
  const patients = new PatientService(node.store, node.ledger, auditor, accounts, {
    ...filter,
    clock: node.clock,
  });
  const cases = new CaseService(node.store, node.ledger, node.clock, accounts, auditor);
  const messaging = new MessagingService(node.store, node.ledger, node.clock);
  const handover = new HandoverService(node.store, node.ledger, node.clock, messaging, patients, cases);
  const triage = new TriageService(
    cases,
    await requireProtocolPack(options.protocolsDir ?? SAMPLE_PACK_DIR),
    (tenant, patientId) => patients.dateOfBirth(tenant, patientId),
  );
  const caseViews = new CaseViews(cases, patients, accounts, auditor, triage);
  const drafts = new DraftStore(node.store, node.clock);
  const openCalls = new OpenCalls(node.store, node.clock, auditor, accounts, {
    ...filter,
    tooLongMinutes: options.callOpenTooLongMinutes ?? DEFAULT_CALL_OPEN_TOO_LONG_MINUTES,
  });
  const heldCases = new HeldCaseRelease(node.store, node.clock, sessions, cases, drafts, node.identity.node);
  // Every close queues the Post Event Message to the patient's practice in the same commit.
  const pem = new PemService(node.store, node.clock, {
    cases,
    patients,
    triage,
    accounts,
    messaging,
    auditor,
  });
  cases.setCloseHook((ctx, closing) => pem.closeDrafts(ctx, closing));
  // Messages in: a 999 validation case's outcome is answered in the commit that records it.
  const inbound = new InboundService(
    node.store,
    node.ledger,
    node.clock,
    { cases, patients, messaging, accounts },
    {
      credentials: options.inboundCredentials ?? [],
      ...(options.inboundValidationMinutes ? { validationMinutes: options.inboundValidationMinutes } : {}),
    },
  );
  cases.addCommandHook((ctx, outcome) => inbound.commandDrafts(ctx, outcome));
  // Every ambulance request (a confirmed disposition, a clinician's upgrade) queues the request to
  // the ambulance service in the same commit, except on a case the ambulance service itself sent
  // for validation: it has the call already, and hears "still needed" as the answer above.
  cases.addCommandHook(async (ctx, { row, events }) => {
    const requested = events.find((e) => e.type === 'case.ambulance_requested');
    if (!requested || (await inbound.isValidationCase(ctx.tenant, row.case_id))) return [];
    const payload = requested.payload as { category: 1 | 2 | 3 | 4; byClinicianId?: string };
    return handover.ambulanceRequestDrafts(ctx, {
      row,
      category: payload.category,
      byClinicianId: payload.byClinicianId ?? null,
      triagePath: triage.answeredPath(row),
    });
  });
  // Call timings from the telephony: a case opened for a call is tied to it in the same commit.
  const telephony = new TelephonyService(
    node.store,
    node.ledger,
    node.clock,
    options.telephonyCredentials ?? [],
  );
  cases.addOpenHook((ctx, { caseId, input, receivedAtMs }) =>
    telephony.linkDrafts(ctx.tenant, actorOf(ctx), {
      caseId,
      receivedAtMs,
      callbackNumber: input.caller.callbackNumber,
      ...(input.telephonyCallId ? { telephonyCallId: input.telephonyCallId } : {}),
    }),
  );
  const queue = new QueueService(
    node.store,
    auditor,
    node.clock,
    (tenant, caseIds) => inbound.marks(tenant, caseIds),
    (ctx, patientIds) => patients.queueFacts(ctx, patientIds),
    (tenant, userIds) => accounts.displayNames(tenant, userIds),
  );
  const directory = new DirectoryService(node.store, node.ledger, node.clock, {
    cases,
    patients,
    triage,
    auditor,
  });
  // Referrals and bookings (C10) re-read the chosen service from the directory; a later message
  // from a referral's service (did not attend) is recorded in the commit that takes it.
  const referrals = new ReferralService(node.store, node.ledger, node.clock, {
    cases,
    messaging,
    patients,
    triage,
    directory: options.serviceLookup ?? directory,
  });
  inbound.addResponseHook((tenant, answered, message) =>
    referrals.didNotAttendDrafts(tenant, answered, message),
  );
  // Emergency prescribing (C9): a pharmacy's later "dispensed" is recorded in the commit that takes it.
  const prescribing = new PrescribingService(
    node.store,
    node.ledger,
    node.clock,
    await requireFormularyDir(options.formularyDir ?? SAMPLE_FORMULARY_DIR),
    {
      cases,
      messaging,
      patients,
      accounts,
      directory: options.serviceLookup ?? directory,
      ...(options.prescriptionFailAfterMs ? { failAfterMs: options.prescriptionFailAfterMs } : {}),
    },
  );
  inbound.addResponseHook((tenant, answered, message) =>
    prescribing.dispensedDrafts(tenant, answered, message),
  );
  pem.setPrescriptions((tenant, caseId) => prescribing.pemLines(tenant, caseId));
  // Treatment-centre appointments (C6): diaries, the custody of slots, booking, reception.
  const booking = new BookingService(node.store, node.ledger, node.clock, {
    cases,
    patients,
    accounts,
    locate: (postcode) => directory.locate(postcode),
  });
  pem.setAppointments((tenant, caseId) => booking.pemLines(tenant, caseId));
  // The rota (C12) and home visits (C7): a clinician's "home visit within N hours" creates the visit
  // in the outcome's commit; double allocations from nodes apart join the reconciliation list.
  const rota = new RotaService(node.store, node.ledger, node.clock, accounts);
  const dispatch = new DispatchService(node.store, node.ledger, node.clock, {
    rota,
    cases,
    patients,
    accounts,
    auditor,
    handover,
    locate: (postcode) => directory.locate(postcode),
  });
  cases.addCommandHook((ctx, outcome) => dispatch.visitRequestDrafts(ctx, outcome));
  // Where a rota covers a site now, only the clinicians on duty there are offered its work.
  cases.addCommandHook(refuseClaimOffDuty(rota));
  queue.setRota((tenant, siteIds) => rota.clinicianFilter(tenant, siteIds));
  const reconciliation = new ReconciliationService(node.store, node.ledger, auditor);
  reconciliation.addSource(dispatchReconciliationSource(dispatch));
  const downtime = new DowntimePackService(node.store, node.ledger, node.clock, {
    contacts: options.downtimeContacts ?? [],
  });
  downtime.setDispatch((tenant, siteIds, roles) => dispatch.packSection(tenant, siteIds, roles));
  downtime.setAppointments((tenant, siteIds, fromMs) =>
    booking.packSection(tenant, siteIds, fromMs, PACK_APPOINTMENT_HOURS),
  );
  const throttle = new SignInThrottle(node.clock, options.throttle ?? DEFAULT_THROTTLE);
  // Other hub processes over the same PostgreSQL database count this one's attempts, and it theirs.
  shareSignInThrottle(node.store, throttle);
  const deps: AppDeps = {
    node,
    accounts,
    sessions,
    auditor,
    clock: node.clock,
    logger: options.logger,
    secureCookies: options.secureCookies ?? true,
    fairUse: new FairUse(options.fairUse ?? DEFAULT_FAIR_USE),
    denials: new DenialAudit(auditor, node.clock, options.denialLimits ?? DEFAULT_DENIAL_LIMITS),
  };
  const { app, registry } = await createApp(deps, options.httpLimits ?? DEFAULT_HTTP_LIMITS);
  const isOperator = operatorCheck(options.operatorTokenSha256);
  /**
   * Who may see more than up or down: the operator (bearer token) or a signed-in user of this
   * node's own provider (the web app's continuity banner, the sync status screens).
   */
  const mayReadHealthDetail = async (request: FastifyRequest): Promise<boolean> => {
    if (isOperator(request.headers.authorization)) return true;
    const token = request.cookies[SESSION_COOKIE];
    const session = token ? await sessions.find(token).catch(() => null) : null;
    return session?.stage === 'full' && session.tenant === node.identity.tenant;
  };
  await warmPasswordHashing();

  const metrics = createMetrics(node, app);
  installSyncBodyHandling(app, { node, clock: node.clock });
  installDirectoryBodyHandling(app);
  const passkeyConfig = options.passkeys ?? {
    rpId: 'localhost',
    rpName: 'Holdfast',
    origins: ['http://localhost:8080'],
  };
  // The API's description, made at its first request (every route is registered by then): it does
  // not change while the process runs, and making it converts every route's schemas.
  let apiDocument: Record<string, unknown> | undefined;
  let apiPage: string | undefined;
  registerRoutes(app, deps, registry, [
    publicRoute({
      method: 'GET',
      url: '/health',
      summary: 'Liveness, whether the node can write, and the ledger head, for load balancers and operators',
      access: { public: true },
      async handler({ request, reply }) {
        const status = await healthOf(node);
        // Anonymous callers (a load balancer) learn up or down only: no node, provider or cause.
        const body = (await mayReadHealthDetail(request)) ? status.detail : { status: status.detail.status };
        return reply.code(status.code).send(body);
      },
    }),
    publicRoute({
      method: 'GET',
      url: '/metrics',
      summary: 'Prometheus metrics (operator token: Authorization: Bearer)',
      access: { public: true },
      async handler({ request, reply }) {
        if (!isOperator(request.headers.authorization))
          throw new UnauthenticatedError(
            options.operatorTokenSha256
              ? 'metrics need the operator token: send Authorization: Bearer <token>'
              : 'metrics are off: set operatorTokenSha256 (HOLDFAST_OPERATOR_TOKEN_SHA256) to read them with that token',
          );
        reply.header('content-type', metrics.contentType);
        return metrics.metrics();
      },
    }),
    publicRoute({
      method: 'GET',
      url: '/openapi.json',
      summary: 'This API described in OpenAPI 3.1',
      access: { public: true },
      async handler() {
        return (apiDocument ??= openApiDocument(registry.routes, { title: 'Holdfast API', version: '1' }));
      },
    }),
    publicRoute({
      method: 'GET',
      url: '/docs',
      summary: 'This API as a readable page',
      access: { public: true },
      async handler({ reply }) {
        return reply.type('text/html; charset=utf-8').send((apiPage ??= docsPage(registry.routes)));
      },
    }),
    ...authRoutes({
      ...deps,
      throttle,
      issuer: 'Holdfast',
      // A release that fails (the node cannot write) must not stop the sign-out: the sweep retries.
      onSignedOut: async (ctx) => {
        await heldCases.afterSignOut(ctx.tenant, ctx.userId).catch((error: unknown) => {
          options.logger.warn({ err: error }, 'releasing the cases of a signed-out clinician failed');
        });
      },
    }),
    ...passkeyRoutes({ ...deps, throttle, issuer: 'Holdfast' }, passkeyConfig),
    ...accountRoutes(deps),
    ...operatorRoutes(deps, { isOperator, configured: options.operatorTokenSha256 !== undefined }),
    ...auditRoutes(node.store, filter, {
      trail: new AuditTrailService(node.store, accounts, patients, cases, filter),
      ledger: node.ledger,
      clock: node.clock,
    }),
    ...patientRoutes(patients),
    ...caseRoutes(cases, caseViews, drafts),
    ...adviserRoutes(cases, openCalls),
    ...paperRecordRoutes(cases),
    ...triageAndQueueRoutes(triage, queue, node.store, node.ledger),
    ...reportRoutes(node.store, { ...filter, clock: node.clock }),
    ...dashboardRoutes({
      store: node.store,
      accounts,
      clock: node.clock,
      ...filter,
      syncAlarms: (tenant) => new SyncStatusStore(node.store, node.clock).activeAlarms(tenant),
      // Failed, past their deadline or past the receiver's window (a 999 request not accepted in 30 s).
      messagesNeedingAttention: async (ctx) =>
        hasPermission(ctx.roles, 'messages.read') ? messaging.needingAttentionCount(ctx) : null,
      callsOpenTooLong: (tenant) => openCalls.tooLongCount(tenant),
      // Not yet accepted by the ambulance service: queued, sent, delivered, or failed (phone it in).
      ambulanceRequestsOutstanding: async (ctx) =>
        hasPermission(ctx.roles, 'messages.read')
          ? (
              await messaging.list(ctx, {
                kind: 'ambulance_request',
                state: ['queued', 'sent', 'delivered', 'failed'],
              })
            ).map((m) => ({
              messageId: m.messageId,
              caseId: m.caseId,
              siteId: m.siteId,
              state: m.state,
              queuedAt: new Date(m.queuedAtMs).toISOString(),
              overdue: m.overdue,
            }))
          : null,
      staffOnDuty: async (tenant) => {
        const live = (await sessions.listLive(tenant)).filter((s) => s.stage === 'full');
        const withSession = new Set(live.map((s) => s.user_id));
        const signedIn = new Set<string>();
        const byRole = new Map<string, number>();
        for (const user of await accounts.list(tenant))
          if (withSession.has(user.userId) && !user.disabled) {
            signedIn.add(user.userId);
            for (const role of user.roles) byRole.set(role, (byRole.get(role) ?? 0) + 1);
          }
        return {
          people: signedIn.size,
          byRole: [...byRole]
            .map(([role, count]) => ({ role, count }))
            .sort((a, b) => a.role.localeCompare(b.role)),
        };
      },
      // Referrals refused, and did-not-attends of patients with a safeguarding flag, not yet acknowledged.
      referralAlerts: async (ctx) =>
        hasPermission(ctx.roles, 'messages.read') ? referrals.alertCount(ctx) : null,
    }),
    ...fhirRoutes(new FhirService(patients, cases, triage, auditor)),
    // The browser app on the same port: GETs that no API route answers (see web-static.ts).
    ...(options.webDist === false ? [] : [webAppRoute(options.webDist)]),
    ...syncRoutes({
      node,
      clock: node.clock,
      status: new SyncStatusStore(node.store, node.clock),
      peerPositions: options.syncPeerPositions ?? (() => null),
    }),
    ...downtimeRoutes(downtime),
    ...reconciliationRoutes(reconciliation),
    ...messagingRoutes(messaging),
    ...handoverRoutes(handover),
    ...referralRoutes(referrals),
    ...prescribingRoutes(prescribing),
    ...bookingRoutes(booking),
    ...pemRoutes(pem),
    ...inboundRoutes(inbound),
    ...telephonyRoutes(telephony),
    ...providerSettingsRoutes(new ProviderSettingsService(node.store, node.ledger, filter)),
    ...directoryRoutes(directory),
    ...rotaRoutes(rota),
    ...dispatchRoutes(dispatch),
  ]);
  // Cases held by clinicians whose sessions ended go back to the queue (see cases/held.ts).
  const sweepEvery = options.heldCaseSweepMs ?? 60_000;
  const sweeper = setInterval(() => {
    heldCases
      .sweep()
      .catch((error: unknown) =>
        options.logger.warn({ err: error }, 'releasing cases held by signed-out clinicians failed'),
      );
  }, sweepEvery);
  sweeper.unref();
  // Repeated denials are written as one event with their count when their window ends.
  const denialFlusher = setInterval(() => {
    deps.denials
      .flush()
      .catch((error: unknown) => options.logger.warn({ err: error }, 'writing coalesced denials failed'));
  }, 10_000);
  denialFlusher.unref();
  // The booking timer (C6): each node hands over and gives back only slots it owns (see booking/).
  const bookingEvery = options.bookingTimerMs ?? 30_000;
  let bookingTicking = false;
  const bookingTimer =
    bookingEvery > 0
      ? setInterval(() => {
          if (bookingTicking) return;
          bookingTicking = true;
          booking
            .tick(node.identity.tenant)
            .catch((error: unknown) =>
              options.logger.warn({ err: error }, 'the booking timer (allocations, returns) failed'),
            )
            .finally(() => {
              bookingTicking = false;
            });
        }, bookingEvery)
      : null;
  bookingTimer?.unref();
  app.addHook('onClose', async () => {
    if (bookingTimer) clearInterval(bookingTimer);
    clearInterval(sweeper);
    clearInterval(denialFlusher);
    await deps.denials.flush(true).catch(() => undefined);
  });
  return {
    app,
    registry,
    deps,
    accounts,
    patients,
    cases,
    messaging,
    heldCases,
    directory,
    booking,
    downtime,
  };
}

/** The node's health: status code, and the detail an operator or signed-in user may see. */
async function healthOf(
  node: HoldfastNode,
): Promise<{ code: number; detail: { status: string } & Record<string, unknown> }> {
  // A failed integrity check halts the ledger: the node is not healthy, whatever else answers.
  if (node.ledger.halted)
    return {
      code: 503,
      detail: { status: 'integrity_fault', node: node.identity.node, problem: node.ledger.halted },
    };
  // PostgreSQL's primary was lost: requests answer 503 until the store finds the writable host.
  const lost = node.store.unavailable;
  if (lost)
    return {
      code: 503,
      detail: {
        status: 'unavailable',
        node: node.identity.node,
        problem: lost.problem,
        since: new Date(lost.sinceMs).toISOString(),
      },
    };
  // Commits that wait on and on for the synchronous standby: every save hangs, though reads answer.
  const waiting = await node.store.commitsWaitingForStandby().catch(() => 0);
  if (waiting > 0)
    return {
      code: 503,
      detail: {
        status: 'unavailable',
        node: node.identity.node,
        problem: `${waiting} commit(s) have waited more than a few seconds for the synchronous standby: no standby is attached (attach one, or clear synchronous_standby_names knowingly: docs/OPERATIONS.md)`,
      },
    };
  const unwritable = await writeProblem(node);
  if (unwritable)
    return {
      code: 503,
      detail: {
        status: 'unavailable',
        node: node.identity.node,
        problem: unwritable.problem,
        cause: { code: unwritable.code, failedAppends: unwritable.failedAppends },
      },
    };
  try {
    await node.store.ping();
    // The head waits for the commit under way: a commit that does not finish (the database waiting
    // for a standby) must not make /health hang too.
    const head = await withinMs(HEALTH_HEAD_WAIT_MS, node.ledger.head(node.identity.tenant));
    if (!head)
      return {
        code: 503,
        detail: {
          status: 'unavailable',
          node: node.identity.node,
          problem: `a commit has not finished within ${HEALTH_HEAD_WAIT_MS / 1000} s: saves are waiting on the database`,
        },
      };
    return {
      code: 200,
      detail: {
        status: 'ok',
        node: node.identity.node,
        role: node.identity.role,
        tenant: node.identity.tenant,
        store: node.store.dialect,
        ledger: { seq: head.seq, sealedSeq: head.checkpointedSeq },
      },
    };
  } catch (error) {
    // Reading the head re-checks the node's unsealed events: a fault there is not an outage.
    if (error instanceof LedgerIntegrityError)
      return {
        code: 503,
        detail: { status: 'integrity_fault', node: node.identity.node, problem: error.message },
      };
    return {
      code: 503,
      detail: { status: 'unavailable', node: node.identity.node, problem: 'the store does not answer' },
    };
  }
}

const HEALTH_HEAD_WAIT_MS = 2000;

/** `promise`'s value, or null if it has not settled within `ms` (it is left to settle on its own). */
async function withinMs<T>(ms: number, promise: Promise<T>): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether an Authorization header carries the operator token (never, when none is configured). */
function operatorCheck(tokenSha256: string | undefined): (header: string | undefined) => boolean {
  const expected = tokenSha256 ? Buffer.from(tokenSha256, 'hex') : null;
  return (header) => {
    if (!expected || !header?.startsWith('Bearer ')) return false;
    const sent = createHash('sha256').update(header.slice(7).trim()).digest();
    return timingSafeEqual(sent, expected);
  };
}

/**
 * Why the node cannot write now, or null. The last appends decide; while they failed because the
 * disk was full, a small write is tried on each call, so the node reports itself healthy again as
 * soon as space is freed, without waiting for a client's write (a load balancer sends none to an
 * unhealthy node). Other failures (a chain another writer changed) clear only when an append commits.
 */
async function writeProblem(node: HoldfastNode): Promise<WriteFailure | null> {
  const failure = node.ledger.writeHealth.failure;
  if (!failure || failure.kind !== 'disk_full') return failure;
  try {
    await node.ledger.withWriteLock(() => node.store.probeWrite());
  } catch {
    return node.ledger.writeHealth.failure;
  }
  node.ledger.writeHealth.committed();
  return null;
}

function createMetrics(node: HoldfastNode, app: FastifyInstance): Registry {
  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics });
  const committed = new Counter({
    name: 'holdfast_ledger_events_committed_total',
    help: 'Events made durable by this node (appended locally)',
    registers: [metrics],
  });
  const requestDuration = new Histogram({
    name: 'holdfast_http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [metrics],
  });
  const tenant = node.identity.tenant;
  new Gauge({
    name: 'holdfast_ledger_head_seq',
    help: "Highest seq of this node's own chain",
    registers: [metrics],
    async collect() {
      this.set((await node.ledger.head(tenant)).seq);
    },
  });
  new Gauge({
    name: 'holdfast_ledger_unsealed_events',
    help: 'Events of this node not yet covered by a signed checkpoint',
    registers: [metrics],
    async collect() {
      const head = await node.ledger.head(tenant);
      this.set(head.seq - head.checkpointedSeq);
    },
  });
  const previous = node.ledger.onCommitted;
  node.ledger.onCommitted = (events) => {
    previous(events);
    committed.inc(events.length);
  };
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    requestDuration.observe(
      { method: request.method, route, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    // The route pattern, never the URL: nothing a client put in a path or query reaches the log.
    request.log.info(
      { method: request.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      'request',
    );
  });
  return metrics;
}
