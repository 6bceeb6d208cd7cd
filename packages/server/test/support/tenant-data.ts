import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { ROLES, type Role } from '@holdfast/core';
import { expect } from 'vitest';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { caseAt } from './cases.ts';
import { Client, PASSWORD, type TestApp } from './http.ts';

/**
 * Seed data for cross-tenant tests: every provider of a test app filled through the HTTP API with
 * data that is recognisably its own (a random marker in every stored text), one signed-in client
 * per role, and every id, marker and secret collected, so a response can be checked for anything
 * that belongs to another provider.
 */
export interface SeededPatient {
  patientId: string;
  homeSiteId: string;
  familyName: string;
  dateOfBirth: string;
  nhsNumber: string;
}

export interface SeededProvider {
  index: number;
  tenant: string;
  /** Random, lower-case; part of every text this provider stores (names, notes, reasons, site names). */
  marker: string;
  sites: string[];
  users: Record<Role, { username: string; userId: string }>;
  /** One fully signed-in client per role (second factor done through the real routes). */
  clients: Record<Role, Client>;
  /** Clients past the password step only (second-factor routes are theirs). */
  passwordStage: Client[];
  /** Users that random admin requests may disable, reset or re-role: never a signed-in client. */
  victims: { userId: string; username: string }[];
  /** Sessions of victims: random admin requests may end them. */
  victimSessions: string[];
  patients: SeededPatient[];
  /** Pools random requests draw ids from; grown with what the provider creates during a run. */
  pools: {
    patient: string[];
    /** Cases at several steps: in the CAS queue, claimed, referred, closed. */
    case: string[];
    site: string[];
    user: string[];
    session: string[];
    credential: string[];
    username: string[];
    nhsNumber: string[];
    family: { familyName: string; dateOfBirth: string }[];
  };
  /** Every id (lower case) that belongs to this provider. */
  ids: Set<string>;
  /** NHS numbers of this provider's patients. */
  nhsNumbers: Set<string>;
  /**
   * Lower-case strings that must never reach anyone outside this provider: the tenant id (part of
   * every user name, display name, site name and the provider's name), the marker, session tokens,
   * CSRF tokens, TOTP secrets, passkey credential ids and its staff's network addresses.
   */
  secrets: Set<string>;
  /** Next NHS number to hand out (this provider's numbers never collide with another's). */
  nextNhs: number;
  /** Network address of this provider's staff clients. */
  address: string;
}

/** A valid NHS number (Modulus 11) whose first digit is the provider's, so providers never collide. */
export function nhsNumberFor(providerIndex: number, k: number): string {
  for (let i = k; ; i++) {
    const nine = `${providerIndex + 1}${String(i % 100_000_000).padStart(8, '0')}`;
    const sum = [...nine].reduce((acc, d, j) => acc + Number(d) * (10 - j), 0);
    const check = 11 - (sum % 11);
    if (check === 10) continue;
    return `${nine}${check === 11 ? 0 : check}`;
  }
}

export function takeNhsNumber(p: SeededProvider): string {
  const n = nhsNumberFor(p.index, p.nextNhs);
  p.nextNhs = Number(n.slice(1, 9)) + 1;
  p.nhsNumbers.add(n);
  p.pools.nhsNumber.push(n);
  return n;
}

export function addId(p: SeededProvider, id: string): void {
  p.ids.add(id.toLowerCase());
}

/** Records what a client of `p` holds (its token, CSRF token and TOTP secret) as `p`'s secrets. */
export function addClientSecrets(p: SeededProvider, c: Client): void {
  for (const s of [c.cookie?.replace(/^hf_session=/, ''), c.csrf, c.totpSecret])
    if (s) p.secrets.add(s.toLowerCase());
}

/** Seeds every provider of `t` (see SeededProvider). Sign-ins go through the real HTTP routes. */
export async function seedProviders(t: TestApp): Promise<SeededProvider[]> {
  const seeded: SeededProvider[] = [];
  for (const [index, provider] of t.providers.entries()) {
    const marker = `zq${index}${randomBytes(5).toString('hex')}`;
    const address = `10.${101 + index}.0.7`;
    const p: SeededProvider = {
      index,
      tenant: provider.tenant,
      marker,
      sites: provider.sites,
      users: provider.users,
      clients: {} as Record<Role, Client>,
      passwordStage: [],
      victims: [],
      victimSessions: [],
      patients: [],
      pools: {
        patient: [],
        case: [],
        site: [...provider.sites],
        user: ROLES.map((r) => provider.users[r].userId),
        session: [],
        credential: [],
        username: ROLES.map((r) => provider.users[r].username),
        nhsNumber: [],
        family: [],
      },
      ids: new Set(),
      nhsNumbers: new Set(),
      secrets: new Set([provider.tenant.toLowerCase(), marker, address]),
      nextNhs: 1000 + index * 7,
      address,
    };
    for (const s of provider.sites) addId(p, s);
    for (const r of ROLES) addId(p, provider.users[r].userId);

    // One fully signed-in client per role.
    for (const role of ROLES) {
      const c = new Client(t.app, t.clock, address);
      const res =
        role === 'provider_admin'
          ? await signInWithNewPasskey(c, provider.users[role].username)
          : await c.signIn(provider.users[role].username);
      expect(res.statusCode, `${role}@${provider.tenant}: ${res.body}`).toBe(200);
      p.clients[role] = c;
    }
    const admin = p.clients.provider_admin;

    // Victims: created by the provider's admin through the API, signed in for real sessions.
    for (let i = 0; i < 3; i++) {
      const username = `victim${i}@${provider.tenant}`;
      const res = await admin.request('POST', '/api/v1/admin/users', {
        username,
        displayName: `Victim ${i} ${marker}`,
        roles: [ROLES[i % 6]!],
        siteIds: [provider.sites[0]!],
        password: PASSWORD,
        reason: 'victim account for the isolation test',
      });
      expect(res.statusCode, res.body).toBe(201);
      const userId = (res.json() as { user: { userId: string } }).user.userId;
      p.victims.push({ userId, username });
      p.pools.user.push(userId);
      p.pools.username.push(username);
      addId(p, userId);
      const vc = new Client(t.app, t.clock, address);
      const signedIn = await vc.signIn(username);
      expect(signedIn.statusCode, signedIn.body).toBe(200);
      addClientSecrets(p, vc);
    }

    // Patients at both sites, with the marker in every text.
    for (let i = 0; i < 6; i++) {
      const homeSiteId = provider.sites[i % 2]!;
      const familyName = `Fenwick${marker}${i}`;
      const dateOfBirth = `19${50 + i}-0${1 + (i % 9)}-1${i}`;
      const nhsNumber = takeNhsNumber(p);
      // A clinician (who may read, and so write, clinical notes and access instructions); the records
      // at site B are registered with break-glass, as the access layer asks outside one's sites.
      const res = await p.clients.clinician.request(
        'POST',
        '/api/v1/patients',
        {
          homeSiteId,
          record: {
            nhsNumber,
            givenName: `Alba ${marker}`,
            familyName,
            dateOfBirth,
            sex: 'female',
            phone: `07700 900${100 + i}`,
            address: `${i} ${marker} Road`,
            specialNotes: [{ kind: 'dnacpr', text: `DNACPR in place (${marker})` }],
            clinicalNotes: `clinical notes ${marker}`,
            accessInstructions: `key safe ${marker}`,
          },
        },
        homeSiteId === provider.sites[0]
          ? undefined
          : { 'x-break-glass-reason': 'Registering for the other site' },
      );
      expect(res.statusCode, res.body).toBe(201);
      const patientId = (res.json() as { patientId: string }).patientId;
      p.patients.push({ patientId, homeSiteId, familyName, dateOfBirth, nhsNumber });
      p.pools.patient.push(patientId);
      p.pools.family.push({ familyName, dateOfBirth });
      addId(p, patientId);
    }
    // Cases about those patients, at several steps, so random requests on case routes (the queue,
    // claims, consultations, records, messages, FHIR reads) find something of their own to act on.
    const { protocols } = await requireProtocolPack(SAMPLE_PACK_DIR);
    const kinds = [
      'speak_to_primary_care',
      'speak_to_primary_care',
      'ed_utc',
      'self_care',
      'speak_to_primary_care',
    ];
    for (const [i, kind] of kinds.entries()) {
      const patient = p.patients[i % p.patients.length]!;
      const { caseId } = await caseAt(p.clients.health_adviser, protocols, patient.homeSiteId, kind, {
        patientId: patient.patientId,
      });
      p.pools.case.push(caseId);
      addId(p, caseId);
    }
    // One of them held by the clinician, so release, transfer and consultation routes can succeed.
    const held = await p.clients.clinician.request('POST', `/api/v1/cases/${p.pools.case[0]}/claim`);
    expect(held.statusCode, held.body).toBe(200);

    // A break-glass read, so the audit trail holds a reason with the marker in it.
    const outside = p.patients.find((x) => x.homeSiteId === provider.sites[1])!;
    const glass = await p.clients.clinician.request(
      'GET',
      `/api/v1/patients/${outside.patientId}`,
      undefined,
      {
        'x-break-glass-reason': `seed break-glass ${marker}`,
      },
    );
    expect(glass.statusCode, glass.body).toBe(200);

    // Sessions stopped after the password step (for the second-factor routes).
    for (const role of ['clinician', 'provider_admin'] as const) {
      const c = new Client(t.app, t.clock, address);
      const res = await c.request('POST', '/api/v1/auth/sign-in', {
        username: provider.users[role].username,
        password: PASSWORD,
      });
      expect(res.statusCode, res.body).toBe(200);
      p.passwordStage.push(c);
      addClientSecrets(p, c);
    }
    for (const c of Object.values(p.clients)) addClientSecrets(p, c);
    seeded.push(p);
  }

  // Session ids, victims' sessions and passkey credential ids, read from the store after seeding.
  for (const p of seeded) {
    const sessions = await t.node.store.db
      .selectFrom('sessions')
      .select(['id', 'user_id'])
      .where('tenant', '=', p.tenant)
      .execute();
    const victimIds = new Set(p.victims.map((v) => v.userId));
    for (const s of sessions) {
      addId(p, s.id);
      p.pools.session.push(s.id);
      if (victimIds.has(s.user_id)) p.victimSessions.push(s.id);
    }
    for (const k of await t.accounts.passkeys(p.tenant, p.users.provider_admin.userId)) {
      p.pools.credential.push(k.credentialId);
      p.secrets.add(k.credentialId.toLowerCase());
    }
  }
  return seeded;
}

/**
 * Admin sign-in through the real routes. A provider admin must use a passkey (TOTP is refused for the
 * role), so rather than planting a session this signs in the way a browser would: password step,
 * then first-time passkey registration, which completes the sign-in. The passkey comes from a
 * software authenticator (a fresh P-256 key, `none` attestation, user present and verified), so the
 * server's WebAuthn verification runs in full and the admin ends with a real second factor.
 */
export async function signInWithNewPasskey(c: Client, username: string) {
  const first = await c.request('POST', '/api/v1/auth/sign-in', { username, password: PASSWORD });
  if (first.statusCode !== 200) return first;
  expect((first.json() as { next: string }).next).toBe('enrol_passkey');
  const options = await c.request('POST', '/api/v1/auth/passkey/register/options');
  if (options.statusCode !== 200) return options;
  const { challenge } = options.json() as { challenge: string };
  return c.request('POST', '/api/v1/auth/passkey/register/verify', {
    response: softwareAttestation(challenge, 'localhost', 'http://localhost:8080'),
    label: 'test authenticator',
  });
}

function softwareAttestation(challenge: string, rpId: string, origin: string) {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = publicKey.export({ format: 'jwk' });
  const coseKey = cbor(
    new Map<Cbor, Cbor>([
      [1, 2], // kty: EC2
      [3, -7], // alg: ES256
      [-1, 1], // crv: P-256
      [-2, Buffer.from(jwk.x!, 'base64url')],
      [-3, Buffer.from(jwk.y!, 'base64url')],
    ]),
  );
  const credentialId = randomBytes(16);
  const length = Buffer.alloc(2);
  length.writeUInt16BE(credentialId.length);
  const authData = Buffer.concat([
    createHash('sha256').update(rpId).digest(),
    Buffer.from([0x45]), // user present, user verified, attested credential data
    Buffer.alloc(4), // sign count 0
    Buffer.alloc(16), // AAGUID
    length,
    credentialId,
    coseKey,
  ]);
  const attestationObject = cbor(
    new Map<Cbor, Cbor>([
      ['fmt', 'none'],
      ['attStmt', new Map()],
      ['authData', authData],
    ]),
  );
  const clientDataJSON = Buffer.from(
    JSON.stringify({ type: 'webauthn.create', challenge, origin, crossOrigin: false }),
  );
  const id = credentialId.toString('base64url');
  return {
    id,
    rawId: id,
    type: 'public-key',
    response: {
      clientDataJSON: clientDataJSON.toString('base64url'),
      attestationObject: attestationObject.toString('base64url'),
      transports: ['internal'],
    },
    clientExtensionResults: {},
  };
}

/** The CBOR subset WebAuthn needs (RFC 8949, shortest encodings). */
type Cbor = number | string | Uint8Array | Map<Cbor, Cbor>;

function cborHead(major: number, n: number): Buffer {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 0x100) return Buffer.from([(major << 5) | 24, n]);
  if (n < 0x10000) return Buffer.from([(major << 5) | 25, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(n, 1);
  return b;
}

function cbor(v: Cbor): Buffer {
  if (typeof v === 'number') return v >= 0 ? cborHead(0, v) : cborHead(1, -1 - v);
  if (typeof v === 'string') {
    const b = Buffer.from(v, 'utf8');
    return Buffer.concat([cborHead(3, b.length), b]);
  }
  if (v instanceof Uint8Array) return Buffer.concat([cborHead(2, v.length), v]);
  const parts = [cborHead(5, v.size)];
  for (const [k, x] of v) parts.push(cbor(k), cbor(x));
  return Buffer.concat(parts);
}
