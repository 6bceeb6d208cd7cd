import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';

/**
 * A software WebAuthn authenticator for tests (no browser): one ES256 (P-256) credential, made
 * from the options JSON the server hands out, answering with the JSON a browser would post
 * (RegistrationResponseJSON / AuthenticationResponseJSON). Every part a browser or authenticator
 * would produce can be overridden, so tests can forge the parts an attacker controls.
 */

export const TEST_ORIGIN = 'http://localhost:8080';

/** authenticatorData flags (WebAuthn §6.1). */
export const FLAG_UP = 0x01;
export const FLAG_UV = 0x04;
export const FLAG_AT = 0x40;

/** CBOR values this encoder writes: enough for an attestation object and a COSE key. */
export type CborValue = number | string | Uint8Array | CborMap;
export type CborMap = Map<number | string, CborValue>;

/** A tiny canonical CBOR encoder (RFC 8949): unsigned and negative ints, bytes, text, maps. */
export function cborEncode(value: CborValue): Buffer {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error(`CBOR: only integers are supported, got ${value}`);
    return value >= 0 ? cborHead(0, value) : cborHead(1, -1 - value);
  }
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([cborHead(3, bytes.length), bytes]);
  }
  if (value instanceof Uint8Array) return Buffer.concat([cborHead(2, value.length), Buffer.from(value)]);
  const parts: Buffer[] = [cborHead(5, value.size)];
  for (const [k, v] of value) parts.push(cborEncode(k), cborEncode(v));
  return Buffer.concat(parts);
}

function cborHead(major: number, n: number): Buffer {
  const m = major << 5;
  if (n < 24) return Buffer.from([m | n]);
  if (n < 0x100) return Buffer.from([m | 24, n]);
  if (n < 0x10000) {
    const b = Buffer.alloc(3);
    b[0] = m | 25;
    b.writeUInt16BE(n, 1);
    return b;
  }
  if (n < 0x100000000) {
    const b = Buffer.alloc(5);
    b[0] = m | 26;
    b.writeUInt32BE(n, 1);
    return b;
  }
  const b = Buffer.alloc(9);
  b[0] = m | 27;
  b.writeBigUInt64BE(BigInt(n), 1);
  return b;
}

const sha256 = (data: Uint8Array | string): Buffer => createHash('sha256').update(data).digest();
const b64url = (data: Uint8Array | string): string => Buffer.from(data).toString('base64url');

/** What a test may falsify in a response; everything else is what an honest authenticator sends. */
export interface ResponseOverrides {
  /** clientDataJSON.origin (default TEST_ORIGIN). */
  origin?: string;
  /** clientDataJSON.challenge (default: the challenge in the options). */
  challenge?: string;
  /** clientDataJSON.type (default webauthn.create / webauthn.get). */
  type?: string;
  /** The relying party id hashed into authenticatorData (default: the one in the options, else localhost). */
  rpId?: string;
  /** authenticatorData flags (default UP|UV, plus AT at registration). */
  flags?: number;
  /** Sign the assertion with this key instead of the credential's own. */
  signWith?: KeyObject;
  /** Signature counter to report (default: the next value of this authenticator's counter). */
  counter?: number;
}

/** A fresh P-256 key pair, e.g. to sign with a key the server never saw. */
export function newEs256KeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

export class SoftAuthenticator {
  readonly credentialId: Buffer;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The signature counter: bumped at every assertion. */
  counter = 0;
  /** The user handle received at registration, returned in assertions. */
  userHandle: string | undefined;
  readonly aaguid = Buffer.alloc(16);

  constructor(options: { credentialId?: Uint8Array } = {}) {
    this.credentialId = Buffer.from(options.credentialId ?? randomBytes(32));
    const pair = newEs256KeyPair();
    this.privateKey = pair.privateKey;
    this.publicKey = pair.publicKey;
  }

  /** The credential id as the server stores and sends it (base64url). */
  get id(): string {
    return b64url(this.credentialId);
  }

  /** The credential public key as a COSE_Key (EC2, ES256, P-256). */
  coseKey(): Buffer {
    const jwk = this.publicKey.export({ format: 'jwk' });
    if (!jwk.x || !jwk.y) throw new Error('P-256 public key without coordinates');
    return cborEncode(
      new Map<number, CborValue>([
        [1, 2], // kty: EC2
        [3, -7], // alg: ES256
        [-1, 1], // crv: P-256
        [-2, Buffer.from(jwk.x, 'base64url')],
        [-3, Buffer.from(jwk.y, 'base64url')],
      ]),
    );
  }

  /** navigator.credentials.create(): a 'none' attestation of a new credential. */
  register(
    options: PublicKeyCredentialCreationOptionsJSON,
    overrides: ResponseOverrides = {},
  ): RegistrationResponseJSON {
    this.userHandle = options.user.id;
    const clientDataJSON = clientData(
      overrides.type ?? 'webauthn.create',
      overrides.challenge ?? options.challenge,
      overrides.origin ?? TEST_ORIGIN,
    );
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(this.credentialId.length);
    const authData = Buffer.concat([
      this.authDataHead(
        overrides.rpId ?? options.rp.id ?? 'localhost',
        overrides.flags ?? FLAG_UP | FLAG_UV | FLAG_AT,
        overrides.counter ?? this.counter,
      ),
      this.aaguid,
      idLength,
      this.credentialId,
      this.coseKey(),
    ]);
    const attestationObject = cborEncode(
      new Map<string, CborValue>([
        ['fmt', 'none'],
        ['attStmt', new Map()],
        ['authData', authData],
      ]),
    );
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: {
        clientDataJSON: b64url(clientDataJSON),
        attestationObject: b64url(attestationObject),
        transports: ['internal'],
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  /** navigator.credentials.get(): an assertion over the challenge in the options. */
  assert(
    options: PublicKeyCredentialRequestOptionsJSON,
    overrides: ResponseOverrides = {},
  ): AuthenticationResponseJSON {
    const clientDataJSON = clientData(
      overrides.type ?? 'webauthn.get',
      overrides.challenge ?? options.challenge,
      overrides.origin ?? TEST_ORIGIN,
    );
    const counter = overrides.counter ?? ++this.counter;
    const authenticatorData = this.authDataHead(
      overrides.rpId ?? options.rpId ?? 'localhost',
      overrides.flags ?? FLAG_UP | FLAG_UV,
      counter,
    );
    const signature = sign(
      'sha256',
      Buffer.concat([authenticatorData, sha256(clientDataJSON)]),
      overrides.signWith ?? this.privateKey,
    ); // DER-encoded ECDSA, as WebAuthn wants for ES256
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: {
        clientDataJSON: b64url(clientDataJSON),
        authenticatorData: b64url(authenticatorData),
        signature: b64url(signature),
        ...(this.userHandle ? { userHandle: this.userHandle } : {}),
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    };
  }

  private authDataHead(rpId: string, flags: number, counter: number): Buffer {
    const counterBytes = Buffer.alloc(4);
    counterBytes.writeUInt32BE(counter);
    return Buffer.concat([sha256(rpId), Buffer.from([flags]), counterBytes]);
  }
}

function clientData(type: string, challenge: string, origin: string): Buffer {
  return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }), 'utf8');
}
