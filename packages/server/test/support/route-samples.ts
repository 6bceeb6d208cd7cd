import { OPERATOR_HEADERS } from './http.ts';
import { randomUUID } from 'node:crypto';
import { caseReference, formatLocal, hasPermission, mayReadField, ROLES, type Role } from '@holdfast/core';
import type {
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
} from '@simplewebauthn/server';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { totpCode } from '../../src/auth/totp.ts';
import type { RouteSpec } from '../../src/http/routes.ts';
import {
  Client,
  PASSWORD,
  SAMPLE_INBOUND_TOKEN,
  SAMPLE_TELEPHONY_TOKEN,
  type Provider,
  type TestApp,
} from './http.ts';
import { validationRequest } from './inbound-bundles.ts';
import { SoftAuthenticator } from './webauthn.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { caseAt } from './cases.ts';
import { Ed25519Signer } from '../../src/node/crypto.ts';
import { issueEnrolmentToken } from '../../src/sync/enrolment.ts';
import { registerPeerKey } from '../../src/sync/engine.ts';
import { readableEventTypes } from '../../src/sync/handlers.ts';
import { SYNC_PROTOCOL_VERSION } from '../../src/sync/protocol.ts';
import { signRequest } from '../../src/sync/signing.ts';

/** A prescription draft of the sample formulary (paracetamol 1 g four times a day for 3 days). */
const SAMPLE_DRAFT = {
  medicineCode: '322236009',
  doseMg: 1000,
  frequencyPerDay: 4,
  durationDays: 3,
  quantity: 24,
  quantityWords: null,
  directions: 'Two tablets four times a day',
};

/** A service id the sample world's directory does not have (referrals and bookings are refused by name). */
const SAMPLE_UNKNOWN_SERVICE = '0e0d0000-0000-4000-8000-0000000000ff';

let packPromise: ReturnType<typeof requireProtocolPack> | null = null;
const samplePack = () => (packPromise ??= requireProtocolPack(SAMPLE_PACK_DIR));

/** A case of the world's site, triaged by the health adviser to a place in the CAS queue. */
async function queuedCase(w: World): Promise<string> {
  return (
    await caseAt(w.clients.health_adviser, (await samplePack()).protocols, w.site, 'speak_to_primary_care')
  ).caseId;
}

/** A queued case that `client` has claimed (when its role may claim; otherwise just queued). */
async function claimedCase(w: World, client: Client, consulting = false): Promise<string> {
  const caseId = await queuedCase(w);
  await client.request('POST', `/api/v1/cases/${caseId}/claim`);
  if (consulting) await client.request('POST', `/api/v1/cases/${caseId}/consultation`);
  return caseId;
}

/** A case the client holds and escalated for a welfare check (two call-backs failed). */
async function escalatedCase(w: World, client: Client): Promise<string> {
  const caseId = await claimedCase(w, client);
  for (const outcome of ['no_answer', 'voicemail'])
    await client.request('POST', `/api/v1/cases/${caseId}/callback-attempts`, { outcome });
  return caseId;
}

/**
 * An open reconciliation item: a case claimed by the clinician, then a second claim by the
 * prescriber written straight to the ledger, as a merge from a node that was apart would bring it
 * (one node's own commands cannot collide). Returns the item id.
 */
async function reconciliationItem(w: World): Promise<string> {
  const caseId = await claimedCase(w, w.clients.clinician);
  const [claim] = await w.t.node.ledger.append([
    {
      tenant: w.provider.tenant,
      type: 'case.claimed',
      actor: `user:${w.provider.users.prescriber.userId}`,
      payload: { caseId, clinicianId: w.provider.users.prescriber.userId },
    },
  ]);
  return `rec-${claim!.id}`;
}

/** A message in the world's outbox, written to the ledger as a node's worker would (optionally failed). */
async function outboxMessage(w: World, failed = false): Promise<string> {
  const messageId = randomUUID();
  const now = Date.now();
  await w.t.node.ledger.append([
    {
      tenant: w.provider.tenant,
      type: 'message.queued',
      actor: 'node:sample',
      payload: {
        messageId,
        kind: 'post_event_message',
        endpointId: 'sample-gp',
        caseId: null,
        siteId: w.site,
        originNode: 'sample-elsewhere',
        queuedAtMs: now,
        failAtMs: now + 3_600_000,
        bundle: { resourceType: 'Bundle', type: 'document' },
        summary: 'Post event message',
      },
    },
    ...(failed
      ? [
          {
            tenant: w.provider.tenant,
            type: 'message.failed',
            actor: 'node:sample',
            payload: { messageId, atMs: now, reason: 'not delivered in time' },
          },
        ]
      : []),
  ]);
  return messageId;
}

const fhirCases = new WeakMap<World, Promise<{ caseId: string; observationId: string }>>();

/**
 * One case for the FHIR routes (made once per world): the world's patient identified, triaged to a
 * call-back, and a consultation with observations recorded by the clinician.
 */
function fhirCase(w: World): Promise<{ caseId: string; observationId: string }> {
  let made = fhirCases.get(w);
  if (!made) {
    made = (async () => {
      const clinician = w.clients.clinician;
      const { caseId } = await caseAt(
        w.clients.health_adviser,
        (await samplePack()).protocols,
        w.site,
        'speak_to_primary_care',
        { patientId: w.patientId },
      );
      await mustOk(await clinician.request('POST', `/api/v1/cases/${caseId}/claim`), 'claim');
      await mustOk(await clinician.request('POST', `/api/v1/cases/${caseId}/consultation`), 'consult');
      await mustOk(
        await clinician.request('POST', `/api/v1/cases/${caseId}/consultation/record`, {
          history: 'Cough for three days',
          observations: { respirationRate: 18, spo2: 97, pulse: 80 },
        }),
        'record',
      );
      const found = await mustOk(
        await clinician.request('GET', `/fhir/R4/Observation?encounter=${caseId}`),
        'observations',
      );
      const observationId = (found.json() as { entry: { resource: { id: string } }[] }).entry[0]!.resource.id;
      return { caseId, observationId };
    })();
    fhirCases.set(w, made);
  }
  return made;
}

/** A new call, opened by the health adviser, not yet triaged. */
async function openCall(w: World): Promise<string> {
  const r = await w.clients.health_adviser.request('POST', '/api/v1/calls', callBody(w));
  return (r.json() as { caseId: string }).caseId;
}

function callBody(w: World) {
  return {
    siteId: w.site,
    caller: {
      name: 'Sam Caller',
      relationship: 'self',
      callbackNumber: '0113 496 0123',
      callbackNumberReadBack: true,
    },
    location: 'At home',
    presentingComplaint: 'Feeling unwell',
  };
}

async function firstPathway(): Promise<string> {
  return [...(await samplePack()).protocols.keys()][0]!;
}

/** A car of the world's site, written to the ledger as a shift manager's registration would be. */
async function sampleVehicle(w: World): Promise<string> {
  const vehicleId = randomUUID();
  await w.t.node.ledger.append([
    {
      tenant: w.provider.tenant,
      type: 'vehicle.registered',
      actor: 'user:sample',
      payload: {
        vehicleId,
        callSign: `Car ${w.next()}`,
        registration: 'NS26 ABC',
        baseSiteId: w.site,
        baseLat: 54,
        baseLon: -1.5,
      },
    },
  ]);
  return vehicleId;
}

/** A home visit of a queued case of the world's site (as a clinician's outcome would create it). */
async function sampleVisit(w: World): Promise<string> {
  const visitId = randomUUID();
  const now = w.t.clock.nowMs();
  await w.t.node.ledger.append([
    {
      tenant: w.provider.tenant,
      type: 'visit.requested',
      actor: 'user:sample',
      payload: {
        visitId,
        caseId: await queuedCase(w),
        patientId: w.patientId,
        siteId: w.site,
        address: { text: '1 Sample Street', postcode: 'NS1 1AA', lat: 54.01, lon: -1.51 },
        accessInstructions: 'Key safe 1234 (sample)',
        reason: 'Frail, cannot get to the centre (sample, not clinically validated)',
        withinHours: 4,
        deadlineMs: now + 4 * 3_600_000,
        priority: 2,
        requestedBy: w.provider.users.clinician.userId,
        atMs: now,
      },
    },
  ]);
  return visitId;
}

/** A shift of the role's user on a new car now, so the crew routes find the caller's car. */
async function onShiftOnCar(w: World, role: Role): Promise<string> {
  const vehicleId = await sampleVehicle(w);
  const now = w.t.clock.nowMs();
  await w.t.node.ledger.append([
    {
      tenant: w.provider.tenant,
      type: 'rota.shift_planned',
      actor: 'user:sample',
      payload: {
        shiftId: randomUUID(),
        userId: w.provider.users[role].userId,
        userName: w.provider.users[role].username,
        role,
        location: { kind: 'car', id: vehicleId },
        startMs: now - 3_600_000,
        endMs: now + 3_600_000,
        source: 'entered',
      },
    },
  ]);
  return vehicleId;
}

/**
 * Shared by the permission and bad-input tests: one valid-looking request for every route, and a
 * "world" of signed-in clients (one per role), a patient, and a user for the admin routes to act on.
 * A route without a sample here fails both tests: a new route must say how it is called.
 */

export function routeKey(route: { method: string; url: string }): string {
  return `${route.method} ${route.url}`;
}

/** A valid-looking request: path parameters, query and JSON body. */
export interface SampleRequest {
  params?: Record<string, string>;
  query?: Record<string, string>;
  body?: unknown;
  /** Headers the request needs (a node's signature on the sync routes); a test's own headers win. */
  headers?: Record<string, string>;
  /**
   * Headers for the body actually sent (the sync routes check their signature over it before
   * reading it): each probe, with whatever body it sends, is signed afresh.
   */
  signFor?: (body: string) => Record<string, string>;
}

export interface Caller {
  role: Role;
  client: Client;
}

export interface RouteSample {
  /** Builds the request; may prepare state (a session to end, a re-authentication) first. */
  build(w: World, caller: Caller): Promise<SampleRequest> | SampleRequest;
  /** The call ends the caller's session: it is made with a session of its own. */
  endsSession?: boolean;
  /**
   * A refusal by the route's own rules rather than its permission (403), which a permitted role can
   * meet with an otherwise valid request.
   */
  ownRefusal?: (role: Role) => RegExp | undefined;
  /**
   * What a permitted caller gets when the sample cannot succeed (a second factor that verifies
   * against nothing): past the permission check, so never 401 or 403. Otherwise 2xx is expected.
   */
  allowedStatus?: number;
  /** The bad-input test calls as this role (default: the first role holding the permission). */
  badInputCaller?: Role;
  /**
   * A FHIR route whose fields are named by the FHIR validator (@medplum/core): it names the nearest
   * element it could type, which may hold the one at fault (`body.entry.0.resource` for a bad
   * `eventCoding.system`, indices left out under an array sent for a single value). Such a path
   * counts when it leads to the expected one.
   */
  fhirValidatorPaths?: boolean;
}

/** Whether a path the FHIR validator gave leads to the expected field (indices ignored). */
export function fhirPathLeadsTo(expected: string, got: string): boolean {
  const plain = (p: string) => p.split('.').filter((s) => !/^\d+$/.test(s));
  const want = plain(expected);
  const have = plain(got);
  return have.length > 1 && have.every((segment, i) => segment === want[i]);
}

export interface World {
  t: TestApp;
  provider: Provider;
  site: string;
  /** A full session per role of the provider, reused across requests. */
  clients: Record<Role, Client>;
  /** A session past the password step only (for the second-factor routes). */
  pending: Client;
  /** A patient of `site`, registered by the health adviser. */
  patientId: string;
  patientNhsNumber: string;
  /** A user of the provider that the admin-route samples change (roles, disable, MFA reset). */
  targetUserId: string;
  /** Ids belonging to the other provider (for cross-tenant probes). */
  other: { patientId: string; userId: string };
  /** A new full session of the role's user (who has a second factor), as a client. */
  freshClient(role: Role): Promise<Client>;
  next(): number;
}

const ADDRESS = '127.0.0.1';

/** A well-formed NHS number (ISB 0149 Modulus 11) derived from n. */
export function nhsNumberFor(n: number): string {
  // Each n has its own block of ten prefixes (n·10 … n·10 + 9), so two n never share a number; within
  // a block the ninth digit moves the sum by 2, so at most one prefix has no check digit.
  const block = 400_000_000 + (n % 50_000_000) * 10;
  for (let k = block; ; k++) {
    const first9 = String(k);
    const sum = [...first9].reduce((acc, d, i) => acc + Number(d) * (10 - i), 0);
    const check = 11 - (sum % 11);
    if (check === 10) continue;
    return `${first9}${check === 11 ? 0 : check}`;
  }
}

/** The passkey of a client whose user signs in with one (the provider admin). */
const authenticators = new WeakMap<Client, SoftAuthenticator>();

/**
 * A second full session for a user who has already signed in for real with their second factor
 * (see `setUpWorld`), made directly in the session store as `completeSignIn` makes it: used where a
 * request ends its session (sign-out), to keep the tests fast.
 */
async function clientWithSession(t: TestApp, tenant: string, userId: string): Promise<Client> {
  const { token, session } = await t.deps.sessions.create({
    tenant,
    userId,
    stage: 'full',
    address: ADDRESS,
    reauthenticated: true,
  });
  const client = new Client(t.app, t.clock, ADDRESS);
  client.cookie = `hf_session=${token}`;
  client.csrf = session.csrf_token;
  return client;
}

async function mustOk(res: LightMyRequestResponse, what: string): Promise<LightMyRequestResponse> {
  if (res.statusCode >= 300) throw new Error(`${what}: ${res.statusCode} ${res.body}`);
  return res;
}

/**
 * First sign-in of a user whose role needs a passkey: password, then a new passkey made by a
 * software authenticator (test/support/webauthn.ts) through the real registration ceremony.
 */
async function signInWithNewPasskey(client: Client, username: string): Promise<void> {
  await mustOk(
    await client.request('POST', '/api/v1/auth/sign-in', { username, password: PASSWORD }),
    username,
  );
  const options = await mustOk(
    await client.request('POST', '/api/v1/auth/passkey/register/options'),
    username,
  );
  const authenticator = new SoftAuthenticator();
  const response = authenticator.register(options.json() as PublicKeyCredentialCreationOptionsJSON);
  await mustOk(
    await client.request('POST', '/api/v1/auth/passkey/register/verify', { response, label: 'test key' }),
    username,
  );
  authenticators.set(client, authenticator);
}

/**
 * Signs every role in once, through the real flows: password and TOTP enrolment for most roles, password
 * and a passkey (software authenticator) for the provider admin. The start-up invariant (no full session
 * without a second factor) is checked at the end.
 */
export async function setUpWorld(t: TestApp): Promise<World> {
  const provider = t.providers[0]!;
  const site = provider.sites[0]!;
  const clients = {} as Record<Role, Client>;
  for (const role of ROLES) {
    const client = new Client(t.app, t.clock, ADDRESS);
    if (role === 'provider_admin') await signInWithNewPasskey(client, provider.users[role].username);
    else await mustOk(await client.signIn(provider.users[role].username), `sign in ${role}`);
    clients[role] = client;
  }

  // The password step only, through the real route.
  const pending = new Client(t.app, t.clock, ADDRESS);
  await mustOk(
    await pending.request('POST', '/api/v1/auth/sign-in', {
      username: provider.users.clinician.username,
      password: PASSWORD,
    }),
    'password step',
  );

  const target = await t.accounts.create(
    provider.tenant,
    {
      username: `target@${provider.tenant}`,
      displayName: 'Target of admin routes',
      roles: ['receptionist'],
      siteIds: [site],
      password: PASSWORD,
    },
    'system:test',
  );

  const patientNhsNumber = nhsNumberFor(1);
  const created = await mustOk(
    await clients.health_adviser.request('POST', '/api/v1/patients', {
      homeSiteId: site,
      record: {
        nhsNumber: patientNhsNumber,
        givenName: 'Ann',
        familyName: 'Example',
        dateOfBirth: '1950-02-01',
        sex: 'female',
        specialNotes: [],
      },
    }),
    'register patient',
  );

  const otherProvider = t.providers[1]!;
  const otherAdviser = new Client(t.app, t.clock, ADDRESS);
  await mustOk(await otherAdviser.signIn(otherProvider.users.health_adviser.username), 'sign in other');
  const otherPatient = await mustOk(
    await otherAdviser.request('POST', '/api/v1/patients', {
      homeSiteId: otherProvider.sites[0],
      record: {
        givenName: 'Other',
        familyName: 'Provider',
        dateOfBirth: '1960-03-04',
        sex: 'male',
        specialNotes: [],
      },
    }),
    'register other patient',
  );

  const unprotected = await t.deps.sessions.sessionsWithoutSecondFactor();
  if (unprotected.length > 0) throw new Error('a full session exists for a user without a second factor');

  let counter = 0;
  return {
    t,
    provider,
    site,
    clients,
    pending,
    patientId: (created.json() as { patientId: string }).patientId,
    patientNhsNumber,
    targetUserId: target.userId,
    other: {
      patientId: (otherPatient.json() as { patientId: string }).patientId,
      userId: otherProvider.users.receptionist.userId,
    },
    freshClient: (role) => clientWithSession(t, provider.tenant, provider.users[role].userId),
    next: () => ++counter,
  };
}

/** The first role (in ROLES order) allowed to call a permission route. */
export function firstPermittedRole(spec: RouteSpec): Role {
  if (!('permission' in spec.access)) throw new Error(`${routeKey(spec)} has no permission`);
  const permission = spec.access.permission;
  const role = ROLES.find((r) => hasPermission([r], permission));
  if (!role) throw new Error(`no role holds ${permission}`);
  return role;
}

/** Fills `:name` path parameters (URL-encoded) and appends the query. */
export function urlFor(spec: Pick<RouteSpec, 'url'>, req: SampleRequest, rawParams = false): string {
  const path = spec.url.replace(/:(\w+)/g, (_, name: string) => {
    const value = req.params?.[name];
    if (value === undefined) throw new Error(`no sample value for :${name} in ${spec.url}`);
    return rawParams ? value : encodeURIComponent(value);
  });
  const query = req.query ? new URLSearchParams(req.query).toString() : '';
  return query ? `${path}?${query}` : path;
}

/** Sends a sample request (body as JSON when present). */
export function send(
  client: Client,
  spec: RouteSpec,
  req: SampleRequest,
  extra: { rawBody?: string; headers?: Record<string, string>; url?: string } = {},
): Promise<LightMyRequestResponse> {
  const body = extra.rawBody ?? (req.body === undefined ? undefined : JSON.stringify(req.body));
  const signed = req.signFor && body !== undefined ? req.signFor(body) : {};
  const headers =
    req.headers || extra.headers || req.signFor ? { ...req.headers, ...signed, ...extra.headers } : undefined;
  return client.request(spec.method, extra.url ?? urlFor(spec, req), body, headers);
}

/** A TOTP code for the client's user at a fresh time step (each step is accepted once). */
function freshCode(w: World, client: Client): string | undefined {
  if (!client.totpSecret) return undefined;
  w.t.clock.advance(30_000);
  return totpCode(client.totpSecret, w.t.clock.nowMs());
}

const reauthenticatedAt = new WeakMap<Client, number>();

/** A passkey assertion over a fresh re-authentication challenge, or null without a passkey. */
async function passkeyReauthentication(client: Client): Promise<unknown> {
  const authenticator = authenticators.get(client);
  if (!authenticator) return null;
  const options = await client.request('POST', '/api/v1/me/reauthenticate/passkey/options');
  if (options.statusCode !== 200) return null;
  return authenticator.assert(options.json() as PublicKeyCredentialRequestOptionsJSON);
}

/**
 * Two factors again, as the MFA-changing routes require: password and a current TOTP code, or a
 * passkey for users who have one instead (at most every 4 minutes of the test clock).
 */
async function reauthenticate(w: World, client: Client): Promise<void> {
  const last = reauthenticatedAt.get(client);
  if (last !== undefined && w.t.clock.nowMs() - last < 4 * 60_000) return;
  const assertion = await passkeyReauthentication(client);
  const res = assertion
    ? await client.request('POST', '/api/v1/me/reauthenticate/passkey/verify', { response: assertion })
    : await client.request('POST', '/api/v1/auth/reauthenticate', {
        password: PASSWORD,
        code: freshCode(w, client) ?? '000000',
      });
  if (res.statusCode === 200) reauthenticatedAt.set(client, w.t.clock.nowMs());
}

/** The shape of a browser's WebAuthn credential JSON; it verifies against nothing. */
function fakeCredential() {
  return {
    id: 'dGVzdC1jcmVkZW50aWFs',
    rawId: 'dGVzdC1jcmVkZW50aWFs',
    type: 'public-key',
    response: { clientDataJSON: 'eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIn0' },
  };
}

/**
 * A registration as `role` may send it: clinical notes and access instructions only from a role that
 * may read them (the access layer refuses the others by name).
 */
function patientBody(w: World, role: Role = 'clinician') {
  const body = {
    homeSiteId: w.site,
    record: {
      nhsNumber: nhsNumberFor(1000 + w.next()),
      givenName: 'Bea',
      familyName: 'Sample',
      dateOfBirth: '1944-07-15',
      sex: 'female',
      phone: '01632 960000',
      specialNotes: [{ kind: 'care_plan', text: 'Care plan held by the GP' }],
      clinicalNotes: 'Type 2 diabetes',
      accessInstructions: 'Key safe by the back door',
    },
  };
  for (const field of ['clinicalNotes', 'accessInstructions'] as const)
    if (!mayReadField([role], field)) delete body.record[field];
  return body;
}

/** One FHIR R4 Patient resource as an NDJSON line, with a fresh NHS number (for the import route). */
function fhirPatientNdjson(w: World): string {
  return JSON.stringify({
    resourceType: 'Patient',
    identifier: [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: nhsNumberFor(500_000 + w.next()) }],
    name: [{ use: 'official', family: 'Sample', given: ['Cai'] }],
    gender: 'male',
    birthDate: '1952-05-06',
    address: [{ use: 'home', line: ['1 Sample Street'], city: 'Leeds', postalCode: 'LS1 4AP' }],
    telecom: [{ system: 'phone', value: '0113 496 0000', use: 'home' }],
    generalPractitioner: [
      {
        type: 'Organization',
        identifier: { system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'B86001' },
      },
    ],
  });
}

/** A made-up directory service for the directory route samples (sample content, made-up place). */
function sampleDirectoryService(serviceId: string) {
  // A list of its own for each day: a test that changes one day's session changes only that day.
  const day = () => [{ opens: '08:00', closes: '22:00' }];
  return {
    serviceId,
    name: 'Sample Urgent Treatment Centre',
    odsCode: 'NSX01',
    type: 'urgent_treatment_centre' as const,
    address: ['1 Made-up Street', 'Northshire'],
    postcode: 'NS1 1AA',
    latitude: 54,
    longitude: -1.5,
    phone: null,
    openingTimes: {
      alwaysOpen: false,
      weekly: { mon: day(), tue: day(), wed: day(), thu: day(), fri: day(), sat: day(), sun: day() },
      bankHolidays: null,
      exceptions: [],
    },
    dispositions: ['Dx05'],
    symptomGroups: [],
    ageRange: { minYears: 0, maxYears: null },
    sexes: [],
    referral: { kind: 'walk_in' as const },
    booking: null,
    notClinicallyValidated: true,
  };
}

/** The world's treatment centre (C6), made once: a room, a template taking 50 patients a slot. */
const sampleCentres = new WeakMap<World, Promise<string>>();
function sampleCentre(w: World): Promise<string> {
  let made = sampleCentres.get(w);
  if (!made) {
    made = (async () => {
      const manager = await w.freshClient('shift_manager');
      await mustOk(
        await manager.request('POST', '/api/v1/centres', {
          centreId: 'sample-tc',
          siteId: w.site,
          name: 'Sample Treatment Centre',
          address: '1 Sample Street',
          postcode: 'NS1 1AA',
          lat: 54,
          lon: -1.5,
          phone: '01632 960222',
          rooms: [{ roomId: 'room-1', name: 'Room 1' }],
        }),
        'centre',
      );
      await mustOk(
        await manager.request('POST', '/api/v1/centres/sample-tc/templates', {
          templateId: 'urgent',
          name: 'Urgent',
          slotMinutes: 15,
          patientsPerSlot: 50,
          kinds: ['urgent_face_to_face'],
        }),
        'template',
      );
      return 'sample-tc';
    })();
    sampleCentres.set(w, made);
  }
  return made;
}

/** The local date and time (Europe/London) `hoursAhead` from the world's clock, whole hour. */
function sampleLocal(w: World, hoursAhead: number): { date: string; time: string } {
  const at = new Date(Math.ceil(w.t.clock.nowMs() / 3_600_000) * 3_600_000 + hoursAhead * 3_600_000);
  const [date, time] = formatLocal(at.getTime()).split(' ') as [string, string];
  return { date, time };
}

/** A new one-hour session of the sample centre two hours ahead: its id and slot ids. */
async function sampleSession(w: World): Promise<{ sessionId: string; slotIds: string[] }> {
  const centreId = await sampleCentre(w);
  const { date, time } = sampleLocal(w, 2);
  const end = sampleLocal(w, 3).time;
  const manager = await w.freshClient('shift_manager');
  const r = await mustOk(
    await manager.request('POST', `/api/v1/centres/${centreId}/sessions`, {
      templateId: 'urgent',
      roomId: 'room-1',
      clinicianName: 'Dr Sample',
      date,
      startLocal: time,
      endLocal: end,
    }),
    'session',
  );
  const body = r.json() as { session: { sessionId: string }; slots: { slotId: string }[] };
  return { sessionId: body.session.sessionId, slotIds: body.slots.map((s) => s.slotId) };
}

/** An appointment booked by the clinician on a queued case (optionally arrived). */
async function sampleAppointment(w: World, arrived = false): Promise<string> {
  const caseId = await queuedCase(w);
  const { slotIds } = await sampleSession(w);
  const clinician = await w.freshClient('clinician');
  const r = await mustOk(
    await clinician.request('POST', `/api/v1/cases/${caseId}/appointments`, { slotId: slotIds[0] }),
    'appointment',
  );
  const bookingId = (r.json() as { appointment: { bookingId: string } }).appointment.bookingId;
  if (arrived)
    await mustOk(await clinician.request('POST', `/api/v1/appointments/${bookingId}/arrived`), 'arrived');
  return bookingId;
}

/** A directory service of the world's provider, added for a sample that acts on one. */
async function directoryService(w: World): Promise<string> {
  const serviceId = randomUUID();
  await w.t.directory.set(w.provider.tenant, 'system:test', sampleDirectoryService(serviceId));
  return serviceId;
}

const FHIR_CASE_TYPES = ['Encounter', 'ServiceRequest', 'QuestionnaireResponse', 'Composition'] as const;

export const ROUTE_SAMPLES: Record<string, RouteSample> = {
  'GET /fhir/R4/metadata': { build: () => ({}) },
  'POST /fhir/R4/$process-message': {
    // Another system, not a user: its bearer token (the sample ambulance service of the first provider).
    build: async (w) => {
      await w.t.messaging.setEndpoint(w.t.providers[0]!.tenant, 'system:test', {
        endpointId: 'sample-ambulance',
        name: 'Sample Ambulance Service',
        kinds: ['ambulance_request', 'response'],
        odsCode: null,
        transport: { type: 'http', url: 'http://127.0.0.1:9/', clientCertificate: null },
        phone: null,
        acceptWithinSeconds: 30,
      });
      return {
        body: validationRequest({ category: 3, incident: `SAMPLE-${w.next()}` }),
        headers: { authorization: `Bearer ${SAMPLE_INBOUND_TOKEN}` },
      };
    },
    fhirValidatorPaths: true,
  },
  'GET /fhir/R4/Patient/:id': { build: (w) => ({ params: { id: w.patientId } }) },
  'GET /fhir/R4/Patient': {
    build: (w) => ({ query: { identifier: `https://fhir.nhs.uk/Id/nhs-number|${w.patientNhsNumber}` } }),
  },
  'GET /fhir/R4/Encounter': { build: (w) => ({ query: { patient: `Patient/${w.patientId}` } }) },
  'GET /fhir/R4/Observation/:id': {
    build: async (w) => ({ params: { id: (await fhirCase(w)).observationId } }),
  },
  'GET /fhir/R4/Observation': { build: async (w) => ({ query: { encounter: (await fhirCase(w)).caseId } }) },
  ...Object.fromEntries(
    FHIR_CASE_TYPES.flatMap((type): [string, RouteSample][] => [
      [`GET /fhir/R4/${type}/:id`, { build: async (w) => ({ params: { id: (await fhirCase(w)).caseId } }) }],
      ...(type === 'Encounter'
        ? []
        : [
            [
              `GET /fhir/R4/${type}`,
              {
                build: async (w: World) => ({
                  query: { encounter: `Encounter/${(await fhirCase(w)).caseId}` },
                }),
              },
            ] as [string, RouteSample],
          ]),
    ]),
  ),
  'GET /health': { build: () => ({}) },
  'GET /metrics': { build: () => ({ headers: { ...OPERATOR_HEADERS } }) },
  'POST /api/v1/operator/providers': {
    // The node operator (bearer token), not a provider's user: a new provider each time.
    build: (w) => ({
      headers: { ...OPERATOR_HEADERS },
      body: { id: `sample-provider-${w.next()}`, name: 'Sample provider' },
    }),
  },
  'GET /openapi.json': { build: () => ({}) },
  'GET /docs': { build: () => ({}) },
  'POST /api/v1/auth/sign-in': {
    build: (w) => ({ body: { username: w.provider.users.receptionist.username, password: PASSWORD } }),
  },
  'POST /api/v1/auth/totp/enrol': { build: () => ({}) },
  'POST /api/v1/auth/totp/confirm': { build: () => ({ body: { code: '123456' } }) },
  'POST /api/v1/auth/totp/verify': { build: () => ({ body: { code: '123456' } }) },
  'POST /api/v1/auth/passkey/register/options': { build: () => ({}) },
  'POST /api/v1/auth/passkey/register/verify': {
    build: () => ({ body: { response: fakeCredential(), label: 'work laptop' } }),
  },
  'POST /api/v1/auth/passkey/options': { build: () => ({}) },
  'POST /api/v1/auth/passkey/verify': { build: () => ({ body: { response: fakeCredential() } }) },
  'GET /api/v1/auth/session': { build: () => ({}) },
  'POST /api/v1/auth/sign-out': { build: () => ({}), endsSession: true },
  'POST /api/v1/auth/reauthenticate': {
    build: (w, { client }) => {
      const code = freshCode(w, client);
      return { body: { password: PASSWORD, ...(code ? { code } : {}) } };
    },
    // Users without an authenticator app re-authenticate with their passkey instead.
    ownRefusal: (role) => (role === 'provider_admin' ? /passkey/ : undefined),
    // Wrong passwords sent by the bad-input test count towards this user's re-authentication
    // lock-out: keep them away from the user the MFA-changing routes re-authenticate.
    badInputCaller: 'dispatcher',
  },
  'POST /api/v1/me/reauthenticate/passkey/options': {
    build: () => ({}),
    ownRefusal: (role) => (role === 'provider_admin' ? undefined : /no passkey/),
  },
  'POST /api/v1/me/reauthenticate/passkey/verify': {
    build: async (_w, { client }) => ({
      body: { response: (await passkeyReauthentication(client)) ?? fakeCredential() },
    }),
    // Without a passkey there is no challenge to answer: "ask for passkey options first".
    allowedStatus: 400,
  },
  'POST /api/v1/me/totp/replace': {
    build: async (w, { client }) => {
      await reauthenticate(w, client);
      return {};
    },
    ownRefusal: (role) => (role === 'provider_admin' ? /passkey/ : undefined),
  },
  'POST /api/v1/me/totp/confirm': { build: () => ({ body: { code: '123456' } }), allowedStatus: 400 },
  'POST /api/v1/me/passkeys/options': {
    build: async (w, { client }) => {
      await reauthenticate(w, client);
      return {};
    },
  },
  'POST /api/v1/me/passkeys': {
    build: async (w, { client }) => {
      await reauthenticate(w, client);
      return { body: { response: fakeCredential(), label: 'spare key' } };
    },
    allowedStatus: 400,
  },
  'GET /api/v1/admin/users': { build: () => ({}) },
  'GET /api/v1/admin/alerts': { build: () => ({}) },
  'GET /api/v1/dashboard/clinical-role-grants': { build: () => ({}) },
  // Administrators' changes to accounts need a fresh re-authentication with the second factor.
  'POST /api/v1/admin/users': {
    build: async (w, { client }) => {
      await reauthenticate(w, client);
      return {
        body: {
          username: `new-${w.next()}@${w.provider.tenant}`,
          displayName: 'New Starter',
          roles: ['receptionist'],
          siteIds: [w.site],
          password: PASSWORD,
        },
      };
    },
  },
  'PUT /api/v1/admin/users/:userId/roles': {
    build: async (w, { client }) => {
      await reauthenticate(w, client);
      return { params: { userId: w.targetUserId }, body: { roles: ['receptionist'], siteIds: [w.site] } };
    },
  },
  'POST /api/v1/admin/users/:userId/disable': {
    build: async (w, { client }) => {
      await reauthenticate(w, client);
      return { params: { userId: w.targetUserId }, body: { reason: 'left the service' } };
    },
  },
  'POST /api/v1/admin/users/:userId/enable': {
    build: async (w, { client }) => {
      await reauthenticate(w, client);
      return { params: { userId: w.targetUserId } };
    },
  },
  'POST /api/v1/admin/users/:userId/reset-mfa': {
    build: async (w, { client }) => {
      await reauthenticate(w, client);
      return { params: { userId: w.targetUserId }, body: { reason: 'lost their phone' } };
    },
  },
  'POST /api/v1/admin/users/:userId/reset-password': {
    build: async (w, { client }) => {
      await reauthenticate(w, client);
      return { params: { userId: w.targetUserId } };
    },
  },
  'POST /api/v1/auth/enrolment-code': {
    // Only after an administrator reset the caller's second factor; the sample users have theirs.
    build: () => ({ body: { enrolmentCode: 'ABCD-EFGH-JKLM-NPQR' } }),
    ownRefusal: () => /no enrolment code is needed/,
  },
  'POST /api/v1/auth/password/temporary': {
    // Only for a temporary password an administrator set.
    build: () => ({ body: { newPassword: 'a new and long passphrase' } }),
    ownRefusal: () => /not a temporary one/,
  },
  'POST /api/v1/me/password': {
    build: async (w, { client }) => {
      await reauthenticate(w, client);
      // The same password again (the sample users sign in with it throughout).
      return { body: { currentPassword: PASSWORD, newPassword: PASSWORD } };
    },
    badInputCaller: 'dispatcher',
  },
  'GET /api/v1/admin/sites': { build: () => ({}) },
  'POST /api/v1/admin/sites': { build: (w) => ({ body: { name: `Overflow site ${w.next()}` } }) },
  'GET /api/v1/admin/sessions': { build: () => ({}) },
  'DELETE /api/v1/admin/sessions/:sessionId': {
    // A session of its own to end: a live session of a user with a second factor.
    build: async (w) => {
      const { session } = await w.t.deps.sessions.create({
        tenant: w.provider.tenant,
        userId: w.provider.users.receptionist.userId,
        stage: 'full',
        address: ADDRESS,
      });
      return { params: { sessionId: session.id } };
    },
  },
  'POST /api/v1/sync/pull': {
    build: async (w) =>
      signedSyncSample(w, '/api/v1/sync/pull', {
        protocol: SYNC_PROTOCOL_VERSION,
        tenant: w.provider.tenant,
        from: SAMPLE_SITE,
        positions: {},
        eventTypes: readableEventTypes(w.t.node.ledger),
        maxEvents: 1,
      }),
  },
  'POST /api/v1/sync/push': {
    build: async (w) =>
      signedSyncSample(w, '/api/v1/sync/push', {
        protocol: SYNC_PROTOCOL_VERSION,
        tenant: w.provider.tenant,
        from: SAMPLE_SITE,
        batches: [],
      }),
  },
  'POST /api/v1/nodes/enrol': {
    build: async (w) => {
      const { token } = await issueEnrolmentToken(w.t.node.store, w.t.clock, {
        tenant: w.provider.tenant,
        createdBy: 'system:test',
      });
      const node = `sample-enrolled-${w.next()}`;
      return { body: { token, node, publicKey: Ed25519Signer.generate(node).signer.publicKey } };
    },
  },
  'POST /api/v1/nodes/enrolment-tokens': { build: () => ({ body: { expiresInMinutes: 60 } }) },
  'GET /api/v1/nodes': { build: () => ({}) },
  'GET /api/v1/sync/status': { build: () => ({}) },
  'GET /api/v1/audit': { build: (w) => ({ query: { limit: '5', patientId: w.patientId } }) },
  'POST /api/v1/audit/search': {
    build: (w) => ({ body: { limit: 5, nhsNumber: w.patientNhsNumber, userName: 'health_adviser' } }),
  },
  'POST /api/v1/audit/export': { build: (w) => ({ body: { nhsNumber: w.patientNhsNumber, format: 'csv' } }) },
  'POST /api/v1/patients': { build: (w, caller) => ({ body: patientBody(w, caller.role) }) },
  'GET /api/v1/patients/:patientId': { build: (w) => ({ params: { patientId: w.patientId } }) },
  'POST /api/v1/patients/:patientId/restricted': {
    build: async (w) => {
      // A restricted record (PDS label R) of the site, so that there is something to release.
      const created = await w.clients.health_adviser.request('POST', '/api/v1/patients', {
        homeSiteId: w.site,
        record: {
          givenName: 'Restricted',
          familyName: `Sample${w.next()}`,
          dateOfBirth: '1970-01-01',
          sex: 'unknown',
          specialNotes: [],
          confidentiality: 'R',
          address: '1 Withheld Road',
        },
      });
      const patientId = (created.json() as { patientId: string }).patientId;
      return { params: { patientId }, body: { reason: 'Ambulance crew cannot find the patient' } };
    },
  },
  'POST /api/v1/patients/:patientId/break-glass': {
    build: (w) => ({
      params: { patientId: w.patientId },
      body: { reason: 'Case at my site, record held by another site' },
    }),
  },
  'PATCH /api/v1/patients/:patientId': {
    build: async (w) => {
      // A patient of its own (version 1), so that every caller's edit is made on the current version.
      const created = await w.clients.clinician.request('POST', '/api/v1/patients', patientBody(w));
      const patientId = (created.json() as { patientId: string }).patientId;
      return {
        params: { patientId },
        body: { version: 1, changes: { address: `${w.next()} Moved Road`, postcode: 'LS1 4AP' } },
      };
    },
  },
  'GET /api/v1/patients/:patientId/history': { build: (w) => ({ params: { patientId: w.patientId } }) },
  'POST /api/v1/patients/:patientId/special-notes': {
    build: (w) => ({
      params: { patientId: w.patientId },
      body: { kind: 'care_plan', text: 'Care plan held by the community team' },
    }),
  },
  'POST /api/v1/cases/:caseId/safeguarding-concerns': {
    build: async (w) => {
      const r = await w.clients.health_adviser.request('POST', '/api/v1/calls', {
        ...callBody(w),
        patientId: w.patientId,
      });
      return {
        params: { caseId: (r.json() as { caseId: string }).caseId },
        body: { concern: 'Caller describes bruising they cannot explain' },
      };
    },
  },
  'POST /api/v1/patients/search': { build: (w) => ({ body: { nhsNumber: w.patientNhsNumber } }) },
  'POST /api/v1/patients/import': {
    build: (w) => ({ body: { homeSiteId: w.site, ndjson: fhirPatientNdjson(w) } }),
  },
  'POST /api/v1/calls': { build: (w) => ({ body: callBody(w) }) },
  'GET /api/v1/cases/:caseId': { build: async (w) => ({ params: { caseId: await openCall(w) } }) },
  'POST /api/v1/cases/:caseId/patient': {
    build: async (w) => ({ params: { caseId: await openCall(w) }, body: { patientId: w.patientId } }),
  },
  'POST /api/v1/cases/:caseId/claim': { build: async (w) => ({ params: { caseId: await queuedCase(w) } }) },
  'POST /api/v1/cases/:caseId/release': {
    build: async (w, { client }) => ({ params: { caseId: await claimedCase(w, client) } }),
  },
  'POST /api/v1/cases/:caseId/transfer': {
    build: async (w, { client, role }) => ({
      params: { caseId: await claimedCase(w, client) },
      body: {
        toClinicianId:
          role === 'clinician' ? w.provider.users.prescriber.userId : w.provider.users.clinician.userId,
      },
    }),
  },
  'POST /api/v1/cases/:caseId/callback-attempts': {
    build: async (w, { client }) => ({
      params: { caseId: await claimedCase(w, client) },
      body: { outcome: 'no_answer' },
    }),
  },
  'POST /api/v1/cases/:caseId/welfare-checks': {
    build: async (w, { client }) => ({
      params: { caseId: await escalatedCase(w, client) },
      body: { checkedBy: 'next_of_kin', outcome: 'patient_reached', details: 'Daughter visited' },
    }),
  },
  'POST /api/v1/cases/:caseId/consultation': {
    build: async (w, { client }) => ({ params: { caseId: await claimedCase(w, client) } }),
  },
  'POST /api/v1/cases/:caseId/consultation/record': {
    build: async (w, { client }) => ({
      params: { caseId: await claimedCase(w, client, true) },
      body: { history: 'Cough for three days', observations: { respirationRate: 18, spo2: 97, pulse: 80 } },
    }),
  },
  'GET /api/v1/cases/:caseId/consultation/draft': {
    build: async (w) => ({ params: { caseId: await queuedCase(w) } }),
  },
  'PUT /api/v1/cases/:caseId/consultation/draft': {
    build: async (w, { client }) => ({
      params: { caseId: await claimedCase(w, client, true) },
      body: { history: 'Cough for thr', observations: { pulse: '8' } },
    }),
  },
  'DELETE /api/v1/cases/:caseId/consultation/draft': {
    build: async (w) => ({ params: { caseId: await queuedCase(w) } }),
  },
  'GET /api/v1/patients/:patientId/encounters': { build: (w) => ({ params: { patientId: w.patientId } }) },
  'POST /api/v1/cases/:caseId/outcome': {
    build: async (w, { client }) => ({
      params: { caseId: await claimedCase(w, client, true) },
      body: { outcome: 'advice_and_close' },
    }),
  },
  'POST /api/v1/cases/:caseId/close': {
    build: async (w, { client }) => ({ params: { caseId: await claimedCase(w, client, true) } }),
    // Closing a case mid-consultation is refused by the case's rules (record an outcome instead).
    allowedStatus: 409,
  },
  'GET /api/v1/calls/mine': { build: () => ({}) },
  'GET /api/v1/calls/open-too-long': { build: () => ({}) },
  'POST /api/v1/cases/:caseId/end-call': {
    build: async (w) => ({ params: { caseId: await openCall(w) }, body: { reason: 'caller_hung_up' } }),
  },
  'POST /api/v1/cases/:caseId/notes': {
    build: async (w) => ({ params: { caseId: await openCall(w) }, body: { text: 'Caller is a neighbour' } }),
  },
  'GET /api/v1/cases/by-reference/:reference': {
    build: async (w) => ({ params: { reference: caseReference(await openCall(w)) } }),
  },
  'POST /api/v1/cases/:caseId/paper-records': {
    build: async (w) => ({
      params: { caseId: await openCall(w) },
      body: {
        kind: 'callback',
        happenedAt: new Date(w.t.clock.nowMs()).toISOString(),
        writtenBy: 'Sam Reid, adviser',
        text: 'Rang back at the time written: no answer, voicemail left',
      },
    }),
  },
  'POST /api/v1/cases/:caseId/disposition/correct': {
    build: async (w) => ({
      params: { caseId: await queuedCase(w) },
      body: { reason: 'Mis-keyed an answer' },
    }),
  },
  'GET /api/v1/triage/pathways': { build: () => ({}) },
  'POST /api/v1/cases/:caseId/triage': {
    build: async (w) => ({
      params: { caseId: await openCall(w) },
      body: { pathwayId: await firstPathway() },
    }),
  },
  'GET /api/v1/cases/:caseId/triage': { build: async (w) => ({ params: { caseId: await openCall(w) } }) },
  'POST /api/v1/cases/:caseId/triage/answers': {
    build: async (w) => {
      const caseId = await openCall(w);
      const started = await w.clients.health_adviser.request('POST', `/api/v1/cases/${caseId}/triage`, {
        pathwayId: await firstPathway(),
      });
      const node = (started.json() as { node: { id: string; options: { id: string }[] } }).node;
      return {
        params: { caseId },
        body: { nodeId: node.id, value: node.options[node.options.length - 1]!.id },
      };
    },
  },
  'POST /api/v1/cases/:caseId/triage/changes': {
    build: async (w) => {
      const caseId = await openCall(w);
      const started = await w.clients.health_adviser.request('POST', `/api/v1/cases/${caseId}/triage`, {
        pathwayId: await firstPathway(),
      });
      const node = (started.json() as { node: { id: string; options: { id: string }[] } }).node;
      const last = node.options[node.options.length - 1]!.id;
      await w.clients.health_adviser.request('POST', `/api/v1/cases/${caseId}/triage/answers`, {
        nodeId: node.id,
        value: last,
      });
      return { params: { caseId }, body: { nodeId: node.id, value: last } };
    },
  },
  'GET /api/v1/queue': { build: () => ({ query: { mine: 'false' } }) },
  'GET /api/v1/queue/stream': { build: () => ({ query: { follow: 'false' } }) },
  'GET /api/v1/reports/iuc-adc': { build: () => ({ query: { period: '2026-11' } }) },
  'GET /api/v1/reports/pem': {
    build: () => ({ query: { from: '2026-11-01T00:00:00Z', to: '2026-12-01T00:00:00Z' } }),
  },
  'GET /api/v1/cases/:caseId/pem.pdf': {
    build: async (w) => ({
      params: {
        caseId: (
          await caseAt(w.clients.health_adviser, (await samplePack()).protocols, w.site, 'self_care', {
            patientId: w.patientId,
          })
        ).caseId,
      },
    }),
    // The world's patient has no registered practice: a permitted role is told there is none to tell.
    allowedStatus: 409,
  },
  'GET /api/v1/sites': { build: () => ({}) },
  'GET /*': { build: () => ({}) },
  'GET /api/v1/dashboard': { build: (w) => ({ query: { siteId: w.site } }) },
  'GET /api/v1/dashboard/hourly': { build: (w) => ({ query: { siteId: w.site, date: '2026-11-29' } }) },
  'GET /api/v1/downtime-pack.pdf': { build: () => ({}) },
  'GET /api/v1/reconciliation': { build: (w) => ({ query: { status: 'open', siteId: w.site } }) },
  'GET /api/v1/reconciliation/:itemId': {
    build: async (w) => ({ params: { itemId: await reconciliationItem(w) } }),
  },
  'POST /api/v1/reconciliation/:itemId/resolve': {
    build: async (w) => ({
      params: { itemId: await reconciliationItem(w) },
      body: {
        decision: { action: 'release_to_queue' },
        reason: 'Both clinicians were told; back to the queue',
      },
    }),
  },
  'POST /api/v1/cases/:caseId/disposition/confirm': {
    build: async (w) => {
      const { caseId, last } = await caseAt(
        w.clients.health_adviser,
        (await samplePack()).protocols,
        w.site,
        'speak_to_primary_care',
        { confirm: false },
      );
      return {
        params: { caseId },
        body: { dxCode: last.status === 'disposition' ? last.disposition.dxCode : 'Dx05' },
      };
    },
  },
  'GET /api/v1/cases/:caseId/ambulance-handover': {
    build: async (w) => ({
      params: {
        caseId: (await caseAt(w.clients.health_adviser, (await samplePack()).protocols, w.site, 'ambulance'))
          .caseId,
      },
    }),
  },
  'POST /api/v1/cases/:caseId/ambulance-handover/phone': {
    build: async (w) => ({
      params: {
        caseId: (await caseAt(w.clients.health_adviser, (await samplePack()).protocols, w.site, 'ambulance'))
          .caseId,
      },
      body: { spokeTo: 'Control room, call-taker 41', reference: 'INC-1001' },
    }),
  },
  // Referrals (C10): the sample world's directory has no such service, so a referral or a booking
  // is refused by name (body.serviceId / query.serviceId) past the permission check.
  'POST /api/v1/cases/:caseId/referral': {
    build: async (w) => ({
      params: {
        caseId: (await caseAt(w.clients.health_adviser, (await samplePack()).protocols, w.site, 'ed_utc'))
          .caseId,
      },
      body: { serviceId: SAMPLE_UNKNOWN_SERVICE, offered: [SAMPLE_UNKNOWN_SERVICE] },
    }),
    allowedStatus: 400,
  },
  'GET /api/v1/cases/:caseId/referral': {
    build: async (w) => ({
      params: {
        caseId: (await caseAt(w.clients.health_adviser, (await samplePack()).protocols, w.site, 'ed_utc'))
          .caseId,
      },
    }),
  },
  'GET /api/v1/referrals': { build: () => ({ query: { needsAttention: 'true' } }) },
  'POST /api/v1/referrals/:referralId/acknowledge': {
    build: () => ({
      params: { referralId: randomUUID() },
      body: { alert: 'rejected', reason: 'referred to the UTC by phone instead' },
    }),
    allowedStatus: 404,
  },
  'GET /api/v1/cases/:caseId/booking/slots': {
    build: async (w) => ({
      params: {
        caseId: (await caseAt(w.clients.health_adviser, (await samplePack()).protocols, w.site, 'ed_utc'))
          .caseId,
      },
      query: { serviceId: SAMPLE_UNKNOWN_SERVICE },
    }),
    allowedStatus: 400,
  },
  'POST /api/v1/cases/:caseId/booking': {
    build: async (w) => ({
      params: {
        caseId: (await caseAt(w.clients.health_adviser, (await samplePack()).protocols, w.site, 'ed_utc'))
          .caseId,
      },
      body: { serviceId: SAMPLE_UNKNOWN_SERVICE, slotId: 'slot-20261129T1000' },
    }),
    allowedStatus: 400,
  },
  // Prescribing (C9). A queued case names no patient, so checks and prescriptions are refused by
  // the case's rules (409) past the permission check; unknown ids are 404.
  'GET /api/v1/formulary': { build: () => ({}) },
  'GET /api/v1/patients/:patientId/allergies-medication': {
    build: (w) => ({ params: { patientId: w.patientId } }),
  },
  'POST /api/v1/patients/:patientId/allergies': {
    build: (w) => ({
      params: { patientId: w.patientId },
      body: {
        allergen: 'Penicillin',
        allergyClass: 'penicillin',
        source: 'caller',
        reportedBy: 'The patient',
      },
    }),
  },
  'POST /api/v1/patients/:patientId/allergies/:allergyId/remove': {
    build: (w) => ({
      params: { patientId: w.patientId, allergyId: randomUUID() },
      body: { reason: 'Recorded in error' },
    }),
    allowedStatus: 404,
  },
  'POST /api/v1/patients/:patientId/medication': {
    build: (w) => ({
      params: { patientId: w.patientId },
      body: { name: 'Simvastatin 40 mg', source: 'record', reportedBy: 'GP summary record' },
    }),
  },
  'POST /api/v1/patients/:patientId/medication/:medicationId/stop': {
    build: (w) => ({
      params: { patientId: w.patientId, medicationId: randomUUID() },
      body: { reason: 'Stopped last month' },
    }),
    allowedStatus: 404,
  },
  'POST /api/v1/cases/:caseId/prescriptions/check': {
    build: async (w, { client }) => ({
      params: { caseId: await claimedCase(w, client, true) },
      body: { draft: SAMPLE_DRAFT },
    }),
    allowedStatus: 409,
  },
  'POST /api/v1/cases/:caseId/prescriptions': {
    build: async (w, { client }) => ({
      params: { caseId: await claimedCase(w, client, true) },
      body: { draft: SAMPLE_DRAFT, overrides: [], pharmacy: 'nominated' },
    }),
    allowedStatus: 409,
  },
  'GET /api/v1/cases/:caseId/prescriptions': {
    build: async (w) => ({ params: { caseId: await queuedCase(w) } }),
  },
  'POST /api/v1/prescriptions/:prescriptionId/cancel': {
    build: () => ({ params: { prescriptionId: randomUUID() }, body: { reason: 'Wrong medicine' } }),
    allowedStatus: 404,
  },
  'POST /api/v1/prescriptions/:prescriptionId/print': {
    build: () => ({
      params: { prescriptionId: randomUUID() },
      body: { reason: 'The pharmacy cannot be reached' },
    }),
    allowedStatus: 404,
  },
  'GET /api/v1/prescriptions/:prescriptionId/pdf': {
    build: () => ({ params: { prescriptionId: randomUUID() } }),
    allowedStatus: 404,
  },
  // Treatment-centre appointments (C6). A queued case's disposition is not booked at a centre, so an
  // adviser or receptionist is refused by the case's rule (409); a clinician books it.
  'GET /api/v1/centres': { build: () => ({}) },
  'POST /api/v1/centres': {
    build: (w) => ({
      body: {
        centreId: `tc-${w.next()}`,
        siteId: w.site,
        name: 'Another Centre',
        address: '2 Sample Street',
        postcode: 'NS1 1AB',
        lat: 54.1,
        lon: -1.4,
        phone: '01632 960333',
        rooms: [{ roomId: 'room-1', name: 'Room 1' }],
      },
    }),
  },
  'POST /api/v1/centres/:centreId/templates': {
    build: async (w) => ({
      params: { centreId: await sampleCentre(w) },
      body: {
        templateId: 'dressing',
        name: 'Dressings',
        slotMinutes: 10,
        patientsPerSlot: 2,
        kinds: ['dressing'],
      },
    }),
  },
  'POST /api/v1/centres/:centreId/sessions': {
    build: async (w) => {
      const { date, time } = sampleLocal(w, 5);
      return {
        params: { centreId: await sampleCentre(w) },
        body: {
          templateId: 'urgent',
          roomId: 'room-1',
          clinicianName: 'Dr Sample',
          date,
          startLocal: time,
          endLocal: sampleLocal(w, 6).time,
        },
      };
    },
  },
  'POST /api/v1/centres/:centreId/sessions/:sessionId/cancel': {
    build: async (w) => ({
      params: { centreId: await sampleCentre(w), sessionId: (await sampleSession(w)).sessionId },
      body: { reason: 'Clinician off sick' },
    }),
  },
  'POST /api/v1/centres/:centreId/allocation-policy': {
    build: async (w) => ({
      params: { centreId: await sampleCentre(w) },
      body: { toNodeId: 'sample-111', toNodeName: 'Sample 111', count: 0, cutoffMinutesBeforeStart: 30 },
    }),
  },
  'POST /api/v1/slots/block': {
    build: async (w) => ({
      body: { slotIds: (await sampleSession(w)).slotIds.slice(0, 1), reason: 'Room closed' },
    }),
  },
  'POST /api/v1/slots/release': {
    build: async (w) => ({
      body: { slotIds: (await sampleSession(w)).slotIds.slice(0, 1), reason: 'Room open' },
    }),
  },
  'POST /api/v1/slots/return': {
    // This node holds no slots by allocation: refused naming body.slotIds.
    build: async (w) => ({ body: { slotIds: (await sampleSession(w)).slotIds.slice(0, 1) } }),
    allowedStatus: 400,
  },
  'GET /api/v1/centres/:centreId/diary': {
    build: async (w) => ({
      params: { centreId: await sampleCentre(w) },
      query: { date: sampleLocal(w, 2).date },
    }),
  },
  'GET /api/v1/booking/custody-check': { build: () => ({}) },
  'GET /api/v1/cases/:caseId/appointment-options': {
    build: async (w) => ({ params: { caseId: await queuedCase(w) }, query: { limit: '5' } }),
    allowedStatus: 409,
  },
  'POST /api/v1/cases/:caseId/appointments': {
    build: async (w) => ({
      params: { caseId: await queuedCase(w) },
      body: { slotId: (await sampleSession(w)).slotIds[0] },
    }),
    allowedStatus: 409,
  },
  'GET /api/v1/cases/:caseId/appointments': {
    build: async (w) => ({ params: { caseId: await queuedCase(w) } }),
  },
  'POST /api/v1/appointments/:bookingId/cancel': {
    build: async (w) => ({
      params: { bookingId: await sampleAppointment(w) },
      body: { reason: 'Feeling better' },
    }),
  },
  'POST /api/v1/appointments/:bookingId/rebook': {
    build: async (w) => ({
      params: { bookingId: await sampleAppointment(w) },
      body: { slotId: (await sampleSession(w)).slotIds[1], reason: 'Later suits the patient' },
    }),
    allowedStatus: 409,
  },
  'GET /api/v1/centres/:centreId/reception': {
    build: async (w) => ({
      params: { centreId: await sampleCentre(w) },
      query: { date: sampleLocal(w, 2).date },
    }),
  },
  'POST /api/v1/appointments/:bookingId/arrived': {
    build: async (w) => ({ params: { bookingId: await sampleAppointment(w) } }),
  },
  'POST /api/v1/appointments/:bookingId/did-not-attend': {
    build: async (w) => ({ params: { bookingId: await sampleAppointment(w) } }),
  },
  'POST /api/v1/appointments/:bookingId/seen': {
    build: async (w) => ({ params: { bookingId: await sampleAppointment(w, true) }, body: {} }),
  },
  'POST /api/v1/centres/:centreId/walk-ins': {
    build: async (w) => ({
      params: { centreId: await sampleCentre(w) },
      body: { patientName: 'Walk In', callbackNumber: '07700 900123', presentingComplaint: 'Sprained ankle' },
    }),
  },
  // The rota (C12) and home visits and dispatch (C7).
  'GET /api/v1/rota/shifts': {
    build: () => ({ query: { from: '2026-12-01T00:00:00Z', to: '2026-12-08T00:00:00Z' } }),
  },
  'POST /api/v1/rota/shifts': {
    build: (w) => {
      const start = w.t.clock.nowMs() + 30 * 24 * 3_600_000 + w.next() * 13 * 3_600_000;
      return {
        body: {
          userId: w.provider.users.clinician.userId,
          role: 'clinician',
          location: { kind: 'site', id: w.site },
          startMs: start,
          endMs: start + 8 * 3_600_000,
        },
      };
    },
  },
  'POST /api/v1/rota/shifts/:shiftId/cancel': {
    build: () => ({ params: { shiftId: randomUUID() }, body: { reason: 'Off sick' } }),
    allowedStatus: 404,
  },
  'GET /api/v1/rota/staff': { build: () => ({}) },
  'POST /api/v1/rota/import': {
    build: (w) => ({
      body: {
        csv: `user,role,location,locationId,start,end\n${w.provider.users.clinician.username},clinician,cas,,2027-03-0${1 + (w.next() % 9)} 08:00,2027-03-0${1 + (w.next() % 9)} 07:00\n`,
      },
    }),
    allowedStatus: 400,
  },
  'GET /api/v1/rota/now': { build: () => ({}) },
  'GET /api/v1/rota/minimums': { build: () => ({}) },
  'POST /api/v1/rota/minimums': {
    build: (w) => ({ body: { role: 'clinician', location: { kind: 'site', id: w.site }, minimum: 2 } }),
  },
  'GET /api/v1/rota/gaps': {
    build: () => ({ query: { from: '2026-12-01T00:00:00Z', to: '2026-12-02T00:00:00Z' } }),
  },
  'GET /api/v1/vehicles': { build: () => ({}) },
  'POST /api/v1/vehicles': {
    build: (w) => ({
      body: {
        callSign: `Car ${w.next()}`,
        registration: 'NS26 XYZ',
        baseSiteId: w.site,
        baseLat: 54,
        baseLon: -1.5,
      },
    }),
  },
  'GET /api/v1/vehicles/:vehicleId': {
    build: async (w) => ({ params: { vehicleId: await sampleVehicle(w) } }),
  },
  'POST /api/v1/vehicles/:vehicleId/retire': {
    build: async (w) => ({ params: { vehicleId: await sampleVehicle(w) }, body: { reason: 'Written off' } }),
  },
  'GET /api/v1/visits': { build: () => ({ query: { state: 'open' } }) },
  'GET /api/v1/visits/:visitId': { build: async (w) => ({ params: { visitId: await sampleVisit(w) } }) },
  'GET /api/v1/visits/:visitId/suggestions': {
    build: async (w) => ({ params: { visitId: await sampleVisit(w) } }),
  },
  // No crew is on shift on the sample car: allocation is refused by the rota (409), past the permission.
  'POST /api/v1/visits/:visitId/allocate': {
    build: async (w) => ({
      params: { visitId: await sampleVisit(w) },
      body: { vehicleId: await sampleVehicle(w) },
    }),
    allowedStatus: 409,
  },
  'POST /api/v1/visits/:visitId/reallocate': {
    build: async (w) => ({
      params: { visitId: await sampleVisit(w) },
      body: { vehicleId: await sampleVehicle(w), reason: 'Nearer car free' },
    }),
    allowedStatus: 409,
  },
  'POST /api/v1/visits/:visitId/cancel': {
    build: async (w) => ({
      params: { visitId: await sampleVisit(w) },
      body: { reason: 'Patient went to hospital' },
    }),
  },
  'GET /api/v1/dispatch/board': { build: () => ({}) },
  'GET /api/v1/crew/me': { build: () => ({}) },
  'POST /api/v1/crew/status': {
    build: async (w, { role }) => {
      await onShiftOnCar(w, role);
      return { body: { status: 'travelling' } };
    },
    ownRefusal: () => /not on shift on a car/,
  },
  'POST /api/v1/crew/position': {
    build: async (w, { role }) => {
      await onShiftOnCar(w, role);
      return { body: { lat: 54.001, lon: -1.501, accuracyM: 12 } };
    },
    ownRefusal: () => /not on shift on a car/,
  },
  // The sample visit has no car: only its crew may record the outcome.
  'POST /api/v1/visits/:visitId/outcome': {
    build: async (w) => ({
      params: { visitId: await sampleVisit(w) },
      body: { outcome: 'seen', note: 'Seen at home' },
    }),
    ownRefusal: () => /crew of the car/,
  },
  'GET /api/v1/messages': { build: () => ({ query: { needsAttention: 'true' } }) },
  'GET /api/v1/messages/:messageId': {
    build: async (w) => ({ params: { messageId: await outboxMessage(w) } }),
  },
  'POST /api/v1/messages/:messageId/retry': {
    build: async (w) => ({
      params: { messageId: await outboxMessage(w, true) },
      body: { reason: 'the practice says its system is back' },
    }),
  },
  'POST /api/v1/messages/:messageId/cancel': {
    build: async (w) => ({
      params: { messageId: await outboxMessage(w) },
      body: { reason: 'sent to the wrong practice' },
    }),
  },
  'GET /api/v1/admin/endpoints': { build: () => ({}) },
  'GET /api/v1/admin/reporting-settings': { build: () => ({}) },
  'PUT /api/v1/admin/reporting-settings': {
    build: () => ({
      body: {
        orgCode: 'NWX',
        contractCode: 'NS-1',
        contractName: 'Sample',
        regionCode: 'Y56',
        regionName: 'London',
      },
    }),
  },
  'POST /api/v1/telephony/call-events': {
    // The telephony, not a user: its bearer token (the sample telephony of the first provider).
    build: (w) => ({
      body: {
        callId: `sample-call-${w.next()}`,
        event: 'offered',
        at: new Date(w.t.clock.nowMs()).toISOString(),
        callerLine: '07700 900123',
      },
      headers: { authorization: `Bearer ${SAMPLE_TELEPHONY_TOKEN}` },
    }),
  },
  'GET /api/v1/directory/services': { build: () => ({}) },
  'GET /api/v1/directory/search': {
    build: async (w) => ({ query: { caseId: await queuedCase(w), latitude: '54', longitude: '-1.5' } }),
  },
  'POST /api/v1/admin/directory/services': {
    build: () => ({ body: sampleDirectoryService(randomUUID()) }),
  },
  'DELETE /api/v1/admin/directory/services/:serviceId': {
    build: async (w) => ({
      params: { serviceId: await directoryService(w) },
      body: { reason: 'closed down' },
    }),
  },
  'POST /api/v1/directory/services/:serviceId/capacity': {
    build: async (w) => ({
      params: { serviceId: await directoryService(w) },
      body: { status: 'amber', note: 'four-hour wait' },
    }),
  },
  'POST /api/v1/admin/directory/import': {
    build: () => ({ body: { services: [sampleDirectoryService(randomUUID())] } }),
  },
  'GET /api/v1/admin/directory/export': { build: () => ({ query: { format: 'json' } }) },
  'POST /api/v1/admin/postcodes/import': {
    // Made-up postcodes (the NS area does not exist) in the ONS Postcode Directory's columns.
    build: () => ({ body: { csv: 'pcds,lat,long\nNS1 1AA,54.0,-1.5\n' } }),
  },
  'POST /api/v1/admin/endpoints': {
    build: () => ({
      body: {
        endpointId: 'sample-gp',
        name: 'Riverside Surgery',
        kinds: ['post_event_message'],
        odsCode: 'A81001',
        transport: { type: 'http', url: 'http://127.0.0.1:9/fhir' },
        phone: '01632 960000',
        acceptWithinSeconds: 3600,
      },
    }),
  },
};

/**
 * Fastify's own list of routes, read from `printRoutes` (the tree it routes by), so a route added
 * with `app.route` directly, outside `registerRoutes`, shows up here and not in the registry.
 */
export function fastifyRoutes(app: FastifyInstance): { method: string; url: string }[] {
  const out: { method: string; url: string }[] = [];
  const prefixes: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    if (line.trim() === '') continue;
    const m = /^((?:│ {3}| {4})*)(?:├── |└── )(\S+)(?: \(([^)]*)\))?$/.exec(line);
    if (!m) throw new Error(`cannot read Fastify's route line: ${JSON.stringify(line)}`);
    const depth = m[1]!.length / 4;
    const path = (depth > 0 ? prefixes[depth - 1]! : '') + m[2]!;
    prefixes[depth] = path;
    prefixes.length = depth + 1;
    // Fastify prints a top-level wildcard (the web app's `/*`) as `*`.
    const url = path.startsWith('/') ? path : `/${path}`;
    for (const method of m[3] ? m[3].split(', ') : []) out.push({ method, url });
  }
  return out;
}

/** ledger_events position now: events appended later have a greater `pos`. */
export async function ledgerPosition(t: TestApp): Promise<number> {
  const row = await t.node.store.db
    .selectFrom('ledger_events')
    .select((eb) => eb.fn.max('pos').as('pos'))
    .executeTakeFirst();
  return Number(row?.pos ?? 0);
}

/** Events appended after a position, oldest first. */
export async function eventsAfter(
  t: TestApp,
  pos: number,
): Promise<{ tenant: string; type: string; payload: Record<string, unknown> }[]> {
  const rows = await t.node.store.db
    .selectFrom('ledger_events')
    .select(['tenant', 'type', 'payload'])
    .where('pos', '>', pos)
    .orderBy('pos')
    .execute();
  return rows.map((r) => ({
    tenant: r.tenant,
    type: r.type,
    payload: JSON.parse(r.payload) as Record<string, unknown>,
  }));
}

/** The node that signs the sync samples: registered in the world's provider at first use. */
const SAMPLE_SITE = 'sample-site';
const sampleSigners = new WeakMap<World, Ed25519Signer>();

/** A sync request signed by SAMPLE_SITE over exactly the JSON text `send` puts on the wire. */
async function signedSyncSample(
  w: World,
  path: string,
  body: Record<string, unknown>,
): Promise<SampleRequest> {
  let signer = sampleSigners.get(w);
  if (!signer) {
    signer = Ed25519Signer.generate(SAMPLE_SITE).signer;
    await registerPeerKey(w.t.node, w.provider.tenant, SAMPLE_SITE, signer.publicKey, 'site');
    sampleSigners.set(w, signer);
  }
  const signFor = (text: string) =>
    signRequest(signer, w.t.clock, { method: 'POST', path, tenant: w.provider.tenant, body: text });
  return { body, headers: signFor(JSON.stringify(body)), signFor };
}
