import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';

/**
 * Configuration: one JSON file (holdfast.config.json in the working directory, or --config /
 * HOLDFAST_CONFIG) overlaid by environment variables. A bad value stops start-up with an error that
 * names the key, where it came from and what is allowed.
 */
/** A value given as JSON text (an environment variable) is parsed; anything else is left to the schema. */
function parseJsonText(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return v;
  }
}

export const configSchema = z.strictObject({
  dataDir: z.string().min(1),
  store: z.enum(['sqlite', 'postgres']),
  /**
   * postgres:// URL of the store; several hosts in libpq's way (`postgres://u@db1:5432,db2:5432/db`)
   * for a primary and its standbys: only the one that accepts writes is used (store/primary.ts).
   */
  databaseUrl: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// connection URL')
    .optional(),
  host: z.string().min(1),
  port: z.number().int().min(0).max(65535),
  checkpointEvery: z.number().int().min(1).max(1_000_000),
  checkpointIntervalSeconds: z.number().int().min(1).max(86_400),
  /** A site: seconds between sync rounds with its hub while nothing waits (coerced: env values are text). */
  syncIntervalSeconds: z.coerce.number().int().min(1).max(3600),
  /** A site: the longest wait between attempts while its hub is away (the wait doubles up to this). */
  syncMaxBackoffSeconds: z.coerce.number().int().min(1).max(3600),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  /** A triage protocol pack directory (licensed content); the shipped sample pack when absent. */
  protocolsDir: z.string().min(1).optional(),
  /** Folder the downtime pack is written to every `downtimePackEveryMinutes` (off when absent). */
  downtimePackDir: z.string().min(1).optional(),
  downtimePackEveryMinutes: z.number().int().min(1).max(1440).optional(),
  /** How often `serve` re-checks chains and projections against the ledger (default 60). */
  integrityCheckMinutes: z.number().int().min(1).max(10_080).optional(),
  /**
   * Threads that verify chains at once (`holdfast verify`, the integrity checks), this one included:
   * default the cores available; 1 checks everything in one thread.
   */
  verifyWorkers: z.number().int().min(1).max(64).optional(),
  /** How many packs the folder keeps (they hold patient data: only the newest few). */
  downtimePackKeep: z.number().int().min(1).max(100).optional(),
  /**
   * TLS client certificates for message endpoints that need one, by name (the endpoint names it):
   * files on this node, never in the ledger. JSON object in HOLDFAST_MESSAGING_CLIENT_CERTIFICATES.
   */
  messagingClientCertificates: z
    .preprocess(
      parseJsonText,
      z.record(
        z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/),
        z.strictObject({
          certFile: z.string().min(1),
          keyFile: z.string().min(1),
          caFile: z.string().min(1).optional(),
        }),
      ),
    )
    .optional(),
  /**
   * The folder holding this node's mailboxes (one folder per mailbox, with out/ and in/), for
   * endpoints whose transport is a mailbox in the MESH manner; such messages are not sent without it.
   */
  messagingMailboxRoot: z.string().min(1).optional(),
  /**
   * Other systems that may post messages in (POST /fhir/R4/$process-message): per system the
   * provider, its endpoint id, the site whose CAS queue takes its cases, and the SHA-256 (hex) of its
   * bearer token — the token itself is never stored. JSON array in HOLDFAST_INBOUND_CREDENTIALS.
   */
  inboundCredentials: z
    .preprocess(
      parseJsonText,
      z
        .array(
          z.strictObject({
            tenant: z.string().min(1).max(64),
            endpointId: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/),
            siteId: z.string().uuid(),
            tokenSha256: z
              .string()
              .regex(/^[0-9a-f]{64}$/, 'must be the SHA-256 of the token, 64 hex digits'),
          }),
        )
        .max(100),
    )
    .optional(),
  /**
   * Telephony systems that may post call events (POST /api/v1/telephony/call-events): per system the
   * provider, its id, and the SHA-256 (hex) of its bearer token — the token itself is never stored.
   * JSON array in HOLDFAST_TELEPHONY_CREDENTIALS.
   */
  telephonyCredentials: z
    .preprocess(
      parseJsonText,
      z
        .array(
          z.strictObject({
            tenant: z.string().min(1).max(64),
            systemId: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/),
            tokenSha256: z
              .string()
              .regex(/^[0-9a-f]{64}$/, 'must be the SHA-256 of the token, 64 hex digits'),
          }),
        )
        .max(100),
    )
    .optional(),
  /**
   * Minutes to validate a 999 call when the request gives no deadline, by category. Sample settings
   * (30 and 60 by default), not clinically validated: set the provider's own.
   */
  inboundValidationMinutes: z
    .preprocess(
      parseJsonText,
      z.strictObject({
        3: z.number().int().min(1).max(1440),
        4: z.number().int().min(1).max(1440),
      }),
    )
    .optional(),
  /** Minutes without activity after which a call still with an adviser is listed for the shift manager. */
  /**
   * How long a prescription message may go unreceived before it is failed and the prescriber is
   * offered the paper route (default 600 s). Until then it may still arrive, so it is not printed.
   */
  prescriptionFailAfterSeconds: z.coerce.number().int().min(10).max(86_400).optional(),
  callOpenTooLongMinutes: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 60)
    .optional(),
  /** Key contacts printed in the downtime pack (JSON array in HOLDFAST_DOWNTIME_CONTACTS). */
  downtimeContacts: z
    .preprocess(
      parseJsonText,
      z
        .array(
          z.strictObject({
            name: z.string().trim().min(1).max(100),
            phone: z.string().trim().min(1).max(40),
            note: z.string().trim().max(200).optional(),
          }),
        )
        .max(30),
    )
    .optional(),
  /**
   * Proxies (addresses or CIDR ranges) whose X-Forwarded-For is believed for the client address
   * (sign-in throttling, audit). Nothing is believed when absent. JSON array or comma-separated list
   * in HOLDFAST_TRUSTED_PROXIES.
   */
  trustedProxies: z
    .preprocess(
      (v) =>
        typeof v === 'string' && !v.trim().startsWith('[')
          ? v.split(',').map((a) => a.trim())
          : parseJsonText(v),
      z
        .array(
          z
            .string()
            .regex(/^[0-9a-fA-F.:]+(\/\d{1,3})?$/, 'must be an IP address or a CIDR range (10.0.0.0/8)'),
        )
        .max(100),
    )
    .optional(),
  /**
   * Failed sign-ins a minute from one address before it is held back (default 300: a call centre
   * behind one NAT address). A name at an address it has signed in from before is not held back.
   */
  signInFailuresPerAddressPerMinute: z.coerce.number().int().min(1).max(100_000).optional(),
  /** Seconds a client may take to send a whole request, headers and body (default 60). */
  requestTimeoutSeconds: z.coerce.number().int().min(1).max(3600).optional(),
  /** Seconds a connection may stay silent, in either direction, before it is closed (default 120). */
  idleTimeoutSeconds: z.coerce.number().int().min(1).max(3600).optional(),
  /** Open connections this node accepts at once; more are refused by closing them (default 4000). */
  maxConnections: z.coerce.number().int().min(1).max(1_000_000).optional(),
  /** Live streams (server-sent events) open at once on this node (default 1000). */
  maxStreams: z.coerce.number().int().min(1).max(1_000_000).optional(),
  /**
   * SHA-256 (hex) of the operator token: GET /metrics, and /health's detail, need
   * `Authorization: Bearer <token>`. Without it /metrics is refused and /health says up or down only.
   */
  operatorTokenSha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'must be the SHA-256 of the token, 64 hex digits')
    .optional(),
});
export type HoldfastConfig = z.infer<typeof configSchema>;

export const CONFIG_DEFAULTS: HoldfastConfig = {
  dataDir: './data',
  store: 'sqlite',
  host: '127.0.0.1',
  port: 8080,
  checkpointEvery: 100,
  checkpointIntervalSeconds: 10,
  syncIntervalSeconds: 5,
  syncMaxBackoffSeconds: 60,
  logLevel: 'info',
};

/** Environment variable for each key. */
export const ENV_KEYS: Record<keyof HoldfastConfig, string> = {
  dataDir: 'HOLDFAST_DATA_DIR',
  store: 'HOLDFAST_STORE',
  databaseUrl: 'HOLDFAST_DATABASE_URL',
  host: 'HOLDFAST_HOST',
  port: 'HOLDFAST_PORT',
  checkpointEvery: 'HOLDFAST_CHECKPOINT_EVERY',
  checkpointIntervalSeconds: 'HOLDFAST_CHECKPOINT_INTERVAL_SECONDS',
  syncIntervalSeconds: 'HOLDFAST_SYNC_INTERVAL_SECONDS',
  syncMaxBackoffSeconds: 'HOLDFAST_SYNC_MAX_BACKOFF_SECONDS',
  logLevel: 'HOLDFAST_LOG_LEVEL',
  protocolsDir: 'HOLDFAST_PROTOCOLS_DIR',
  downtimePackDir: 'HOLDFAST_DOWNTIME_PACK_DIR',
  downtimePackEveryMinutes: 'HOLDFAST_DOWNTIME_PACK_EVERY_MINUTES',
  integrityCheckMinutes: 'HOLDFAST_INTEGRITY_CHECK_MINUTES',
  verifyWorkers: 'HOLDFAST_VERIFY_WORKERS',
  downtimePackKeep: 'HOLDFAST_DOWNTIME_PACK_KEEP',
  downtimeContacts: 'HOLDFAST_DOWNTIME_CONTACTS',
  messagingClientCertificates: 'HOLDFAST_MESSAGING_CLIENT_CERTIFICATES',
  messagingMailboxRoot: 'HOLDFAST_MESSAGING_MAILBOX_ROOT',
  inboundCredentials: 'HOLDFAST_INBOUND_CREDENTIALS',
  inboundValidationMinutes: 'HOLDFAST_INBOUND_VALIDATION_MINUTES',
  telephonyCredentials: 'HOLDFAST_TELEPHONY_CREDENTIALS',
  callOpenTooLongMinutes: 'HOLDFAST_CALL_OPEN_TOO_LONG_MINUTES',
  prescriptionFailAfterSeconds: 'HOLDFAST_PRESCRIPTION_FAIL_AFTER_SECONDS',
  trustedProxies: 'HOLDFAST_TRUSTED_PROXIES',
  signInFailuresPerAddressPerMinute: 'HOLDFAST_SIGN_IN_FAILURES_PER_ADDRESS_PER_MINUTE',
  requestTimeoutSeconds: 'HOLDFAST_REQUEST_TIMEOUT_SECONDS',
  idleTimeoutSeconds: 'HOLDFAST_IDLE_TIMEOUT_SECONDS',
  maxConnections: 'HOLDFAST_MAX_CONNECTIONS',
  maxStreams: 'HOLDFAST_MAX_STREAMS',
  operatorTokenSha256: 'HOLDFAST_OPERATOR_TOKEN_SHA256',
};

const NUMERIC_KEYS = new Set<keyof HoldfastConfig>([
  'port',
  'checkpointEvery',
  'checkpointIntervalSeconds',
  'downtimePackEveryMinutes',
  'downtimePackKeep',
  'integrityCheckMinutes',
  'verifyWorkers',
  'callOpenTooLongMinutes',
  'prescriptionFailAfterSeconds',
]);

export class ConfigError extends Error {}

export function loadConfig(
  options: { file?: string; env?: NodeJS.ProcessEnv; overrides?: Partial<HoldfastConfig> } = {},
): HoldfastConfig {
  const env = options.env ?? process.env;
  const sources = new Map<string, string>();
  let fromFile: Record<string, unknown> = {};
  const explicitFile = options.file ?? env.HOLDFAST_CONFIG;
  const file = resolve(explicitFile ?? 'holdfast.config.json');
  if (existsSync(file)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new ConfigError(`config file ${file} is not valid JSON: ${(error as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(`config file ${file} must hold a JSON object`);
    }
    fromFile = parsed as Record<string, unknown>;
    for (const key of Object.keys(fromFile)) sources.set(key, `in ${file}`);
  } else if (explicitFile) {
    throw new ConfigError(`config file ${file} does not exist`);
  }

  const fromEnv: Record<string, unknown> = {};
  for (const [key, envName] of Object.entries(ENV_KEYS) as [keyof HoldfastConfig, string][]) {
    const raw = env[envName];
    if (raw === undefined || raw === '') continue;
    sources.set(key, `from ${envName}`);
    fromEnv[key] = NUMERIC_KEYS.has(key) && /^-?\d+$/.test(raw.trim()) ? Number(raw.trim()) : raw;
  }
  const merged = { ...CONFIG_DEFAULTS, ...fromFile, ...fromEnv, ...options.overrides };
  for (const key of Object.keys(options.overrides ?? {})) sources.set(key, 'from the command line');
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const key = issue.path.map(String).join('.');
      const where = sources.get(key) ?? '';
      const shown = key in merged ? ` (got ${JSON.stringify((merged as Record<string, unknown>)[key])})` : '';
      if (issue.code === 'unrecognized_keys') {
        return `config: unknown key(s) ${issue.keys.join(', ')}${sources.size ? '' : ''}; allowed keys: ${Object.keys(ENV_KEYS).join(', ')}`;
      }
      return `config key "${key}"${where ? ` ${where}` : ''}: ${issue.message}${shown}`;
    });
    throw new ConfigError(lines.join('\n'));
  }
  if (result.data.store === 'postgres' && !result.data.databaseUrl) {
    throw new ConfigError(
      `config key "databaseUrl" (${ENV_KEYS.databaseUrl}) is required when store is "postgres"`,
    );
  }
  return {
    ...result.data,
    dataDir: resolve(result.data.dataDir),
    ...(result.data.protocolsDir ? { protocolsDir: resolve(result.data.protocolsDir) } : {}),
    ...(result.data.downtimePackDir ? { downtimePackDir: resolve(result.data.downtimePackDir) } : {}),
    ...(result.data.messagingMailboxRoot
      ? { messagingMailboxRoot: resolve(result.data.messagingMailboxRoot) }
      : {}),
  };
}
