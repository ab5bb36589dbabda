import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { envSchema } from 'env-schema';
import { Type, type Static } from '@sinclair/typebox';

const port = (fallback: number) => Type.Integer({ minimum: 0, maximum: 65535, default: fallback });

/** Every environment variable fieldops reads, with its default (docs/design.md, "Configuration"). */
const EnvSchema = Type.Object({
  /** The owner's connection to a PostgreSQL server; unset: the embedded PostgreSQL under DATA_DIR (docs/design.md, "Two commands: embedded PostgreSQL and the in-process bus"). */
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATABASE_SERVICE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATABASE_SERVICE_PASSWORD: Type.Optional(Type.String()),
  DATABASE_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 200, default: 10 }),
  /** When set, `/metrics` on every port answers only `Authorization: Bearer <METRICS_TOKEN>` (401 otherwise). */
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  /** How long a pool waits for a new connection before the request answers 503 (a server down or unreachable). */
  DATABASE_CONNECT_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 120_000, default: 5_000 }),
  /** The Redis of the stream bus, leases and rate limits; unset: the in-process bus (one process holds every role). */
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  /** Prefix of every Redis key fieldops writes, so that several deployments (or test files) share one Redis. */
  REDIS_PREFIX: Type.String({ default: '' }),
  HOST: Type.String({ default: '0.0.0.0' }),
  API_PORT: port(8080),
  REALTIME_PORT: port(8081),
  MQTT_PORT: port(1883),
  /**
   * Hosts (`hooks.example.com`, `*.corp.example`) or addresses and ranges (`127.0.0.1`, `10.0.0.0/8`,
   * `fd00::/8`) that webhooks may reach although private or loopback (docs/design.md, "Webhooks").
   */
  WEBHOOK_ALLOW_HOSTS: Type.String({ default: '' }),
  /**
   * Seals webhook signing secrets at rest (AES-256-GCM). Every API and webhooks process of one deployment
   * must share it; unset, one is generated under DATA_DIR (one machine). A known placeholder is refused.
   */
  WEBHOOK_SECRET_KEY: Type.Optional(Type.String({ minLength: 32 })),
  /** How long one delivery attempt may take, connection included. */
  WEBHOOK_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 10_000 }),
  /**
   * Delays before each retry, in ms, comma-separated; each is jittered down by up to a quarter. The default
   * retries within 15 s, then 90 s, and gives up after about a day.
   */
  WEBHOOK_RETRY_DELAYS_MS: Type.String({ pattern: '^\\d+(,\\d+)*$', default: '15000,90000,600000,3600000,10800000,28800000,43200000' }),
  /** Attempts in flight per endpoint and process: one slow endpoint holds only these. */
  WEBHOOK_ENDPOINT_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 1000, default: 16 }),
  /** Attempts in flight per process, all endpoints together. */
  WEBHOOK_MAX_IN_FLIGHT: Type.Integer({ minimum: 1, maximum: 10_000, default: 512 }),
  /** An endpoint without a successful attempt for this long is disabled when a delivery to it fails for good. */
  WEBHOOK_DISABLE_AFTER_MS: Type.Integer({ minimum: 0, default: 24 * 3600 * 1000 }),
  /** After a secret rotation, how long the previous secret keeps signing too, in seconds (default one day). */
  WEBHOOK_SECRET_OVERLAP_S: Type.Integer({ minimum: 0, maximum: 30 * 86400, default: 86_400 }),
  /** Polling fallback of the webhooks role when no insert notice arrives. */
  WEBHOOK_POLL_MS: Type.Integer({ minimum: 10, maximum: 60_000, default: 1000 }),
  /**
   * Days a finished webhook delivery (and its attempts) stays in the log, and a delivery may wait on a
   * disabled endpoint before it expires; purged hourly by the webhooks role.
   */
  WEBHOOK_LOG_RETENTION_DAYS: Type.Integer({ minimum: 1, maximum: 3650, default: 30 }),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
  DATA_DIR: Type.String({ default: './data' }),
  /** HMAC secret for user JWTs; every API and realtime process of one deployment must share it. */
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  /**
   * `fieldops start` with every role seeds a demo organization on an empty database and drives its
   * simulated fleet over MQTT (docs/design.md, "The demo"); 0 turns it off.
   */
  FIELDOPS_DEMO: Type.String({ default: '1', pattern: '^(0|1|true|false|yes|no|on|off)$' }),
  /** Run pending migrations when `fieldops start` begins (as the DATABASE_URL owner). */
  MIGRATE_ON_START: Type.Boolean({ default: true }),
  /** Number of `positions:{n}` shards; an asset's fixes always land in the same shard. */
  POSITION_SHARDS: Type.Integer({ minimum: 1, maximum: 256, default: 4 }),
  /** Approximate length kept in each events and punches stream (`XADD … MAXLEN ~`), in entries. */
  STREAM_MAXLEN: Type.Integer({ minimum: 1000, default: 1_000_000 }),
  /**
   * A memory backstop per `positions:{n}` shard, in entries (each ≤ 500 fixes). The geofence role trims
   * what its consumer group has evaluated, so in operation the shards stay far shorter than this.
   */
  POSITION_STREAM_MAXLEN: Type.Integer({ minimum: 100, default: 200_000 }),
  /** Rows per ingest commit at most (measured: 5,000-row statements insert ~20% faster than 2,000-row ones). */
  INGEST_BATCH_MAX_ROWS: Type.Integer({ minimum: 1, maximum: 20_000, default: 5000 }),
  INGEST_BATCH_MAX_MS: Type.Integer({ minimum: 0, maximum: 10_000, default: 5 }),
  /** Largest GpsBatch accepted, in fixes; larger ones are rejected as `batch_too_large`. */
  INGEST_MAX_BATCH_FIXES: Type.Integer({ minimum: 1, maximum: 10_000, default: 500 }),
  /**
   * Largest MQTT packet (its remaining length) a device may send after CONNECT; a larger one ends the connection
   * as soon as its length header is read (docs/design.md, "Device contract"). A CONNECT may be 2 KiB at most.
   */
  MQTT_MAX_PACKET_BYTES: Type.Integer({ minimum: 1024, maximum: 268_435_455, default: 64 * 1024 }),
  /** A socket that sends no CONNECT this long after the TCP connect is closed. */
  MQTT_CONNECT_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 10_000 }),
  /**
   * Device logins per source address and minute that may find no usable device (unknown token, disabled device)
   * before that address gets no more look-ups until the minute is over (MQTT: CONNACK 3; HTTP and WebSocket: 429).
   */
  INGEST_AUTH_FAILURES_PER_MIN: Type.Integer({ minimum: 1, default: 1000 }),
  /** Rows waiting for the database past which ingest stops reading from sockets. */
  INGEST_MAX_PENDING_ROWS: Type.Integer({ minimum: 100, default: 50_000 }),
  /**
   * Processes sharing the ingest role's MQTT listening socket (services/ingest/processes.ts): each a whole ingest node, the
   * kernel spreading connections between them. 1: the role's own process only.
   */
  INGEST_PROCESSES: Type.Integer({ minimum: 1, maximum: 64, default: 1 }),
  TRUST_PROXY: Type.Boolean({ default: false }),
  /** Seconds without traffic after which a live socket is pinged, then closed if it does not answer. */
  REALTIME_IDLE_TIMEOUT_S: Type.Integer({ minimum: 8, maximum: 960, default: 60 }),
  /** Bytes buffered for a live socket past which its positions are conflated (latest per asset). */
  REALTIME_CONFLATE_BYTES: Type.Integer({ minimum: 1024, default: 256 * 1024 }),
  /** Bytes buffered for a live socket past which it is closed (4008): events are never dropped silently. */
  REALTIME_MAX_BUFFER_BYTES: Type.Integer({ minimum: 4096, default: 4 * 1024 * 1024 }),
  /**
   * How often live sockets re-check the session or API key they were opened with (a revoked key, or a
   * session whose user was disabled, re-roled or deleted, ends them: 4001). Sessions must end within 5 s.
   */
  REALTIME_CREDENTIALS_RECHECK_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 2_000 }),
  /** Where browsers reach the live socket (e.g. wss://live.example.com/v1/live); default: the API host at REALTIME_PORT. */
  PUBLIC_REALTIME_URL: Type.Optional(Type.String({ pattern: '^wss?://' })),
  /** Optional map tile URL template for the live map ({z}/{x}/{y}); none by default (works offline). */
  MAP_TILE_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  /** Attribution shown with MAP_TILE_URL's tiles (most tile providers require one). */
  MAP_TILE_ATTRIBUTION: Type.Optional(Type.String()),
  /** API requests per minute and tenant, by plan (docs/design.md, "REST API"); 0 means no limit. */
  RATE_LIMIT_STARTER_PER_MIN: Type.Integer({ minimum: 0, default: 1000 }),
  RATE_LIMIT_TEAM_PER_MIN: Type.Integer({ minimum: 0, default: 5000 }),
  RATE_LIMIT_UNLIMITED_PER_MIN: Type.Integer({ minimum: 0, default: 0 }),
  /** Failed `POST /v1/auth/token` attempts per minute for one email at one organization. */
  LOGIN_ATTEMPTS_PER_MIN: Type.Integer({ minimum: 1, default: 10 }),
  /** Bearer tokens or API keys per minute from one client address that may be looked up and found invalid. */
  AUTH_FAILURES_PER_MIN: Type.Integer({ minimum: 1, default: 100 }),
  /** Where inspection photos and signatures are kept: `local` (under DATA_DIR/files) or `s3` (S3_* below). */
  FILE_STORAGE: Type.Union([Type.Literal('local'), Type.Literal('s3')], { default: 'local' }),
  /** The bucket for FILE_STORAGE=s3 (required then). */
  S3_BUCKET: Type.Optional(Type.String({ minLength: 3, maxLength: 63 })),
  S3_REGION: Type.String({ default: 'us-east-1' }),
  /** An S3-compatible endpoint (MinIO, Ceph, R2, …); unset: AWS. */
  S3_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://' })),
  /** Static credentials; unset: the AWS SDK's default chain (environment, instance role, …). */
  S3_ACCESS_KEY_ID: Type.Optional(Type.String()),
  S3_SECRET_ACCESS_KEY: Type.Optional(Type.String()),
  /** Path-style URLs (`endpoint/bucket/key`), which most S3-compatible servers need. */
  S3_FORCE_PATH_STYLE: Type.Boolean({ default: false }),
  /** Prepended to every object key (several deployments in one bucket). */
  S3_PREFIX: Type.String({ default: '' }),
});

type Env = Static<typeof EnvSchema>;

export interface Config extends Env {
  jwtSecret: string;
  /** WEBHOOK_SECRET_KEY, or the one generated under DATA_DIR. */
  webhookSecretKey: string;
  /** WEBHOOK_RETRY_DELAYS_MS parsed. */
  webhookRetryDelaysMs: number[];
  /** FIELDOPS_DEMO as a switch. */
  demo: boolean;
  /** Connection strings of the services' least-privilege roles (docs/design.md, "Data and tenancy"); null on the embedded database (one login, `set local role`). */
  serviceDatabaseUrls: Record<ServiceDbRole, string> | null;
}

/** A configuration that names its servers: PostgreSQL and Redis (tests, benches, a multi-process deployment). */
export interface ServerConfig extends Config {
  DATABASE_URL: string;
  REDIS_URL: string;
  serviceDatabaseUrls: Record<ServiceDbRole, string>;
}

export function requireServers(config: Config): ServerConfig {
  if (!config.DATABASE_URL || !config.REDIS_URL || !config.serviceDatabaseUrls) {
    throw new ConfigError('invalid configuration: DATABASE_URL and REDIS_URL must both be set here');
  }
  return config as ServerConfig;
}

export type ServiceDbRole = 'api' | 'ingest' | 'worker';
export const SERVICE_DB_ROLES: Record<ServiceDbRole, string> = {
  api: 'fieldops_api',
  ingest: 'fieldops_ingest',
  worker: 'fieldops_worker',
};

export class ConfigError extends Error {
  readonly code = 'config_invalid';
}

/**
 * Secret values known to be published — earlier docker-compose defaults, examples, words anyone tries
 * first — in one place. A deployment carrying one is open to anyone who reads the repository (a JWT
 * secret lets them mint an admin session for any tenant), so `fieldops start` and `migrate` refuse it.
 */
const PLACEHOLDER_SECRETS = [
  /^change[-_ ]?me/i, /changeme/i, /placeholder/i, /replace[-_ ]?me/i, /^your[-_ ]/i, /^(secret|example)/i,
  /^(password|postgres|fieldops|admin|test|default)$/i,
  /^(.)\1*$/, // one character repeated (xxxxxxxx…, 00000000…)
];
const SECRET_VARIABLES = ['JWT_SECRET', 'DATABASE_SERVICE_PASSWORD', 'METRICS_TOKEN', 'WEBHOOK_SECRET_KEY'] as const;

/** A value copied from an example rather than generated (PLACEHOLDER_SECRETS). */
function isPlaceholder(value: string): boolean {
  return PLACEHOLDER_SECRETS.some((pattern) => pattern.test(value.trim()));
}

/** Throws a ConfigError naming every secret variable set to a known placeholder (docs/design.md, "Reliability and security"). */
export function refusePlaceholderSecrets(config: Config): void {
  const placeholders = SECRET_VARIABLES.filter((name) => {
    const value = config[name];
    return typeof value === 'string' && isPlaceholder(value);
  });
  if (placeholders.length) {
    throw new ConfigError(`invalid configuration: ${placeholders.join(', ')} ${placeholders.length > 1 ? 'are' : 'is'} set to a known placeholder; set a long random value of your own`);
  }
}

/** Parses and validates the environment once; the result is passed down, never re-read. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Env> = {}): Config {
  let parsed: Env;
  try {
    // `env: false`: only the variables given here (process.env by default), where an empty value means unset.
    parsed = envSchema<Env>({ schema: EnvSchema, data: { ...pickDefined(env), ...overrides }, dotenv: false, env: false });
  } catch (err) {
    const message = (err as Error).message.replace(/env\//g, '');
    throw new ConfigError(`invalid configuration: ${message}`);
  }
  if (parsed.FILE_STORAGE === 's3' && !parsed.S3_BUCKET) throw new ConfigError('invalid configuration: FILE_STORAGE=s3 needs S3_BUCKET');
  if (Boolean(parsed.S3_ACCESS_KEY_ID) !== Boolean(parsed.S3_SECRET_ACCESS_KEY)) {
    throw new ConfigError('invalid configuration: S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together');
  }
  return {
    ...parsed,
    jwtSecret: parsed.JWT_SECRET ?? persistentSecret(parsed.DATA_DIR, 'jwt.secret'),
    webhookSecretKey: parsed.WEBHOOK_SECRET_KEY ?? persistentSecret(parsed.DATA_DIR, 'webhook.key'),
    webhookRetryDelaysMs: parsed.WEBHOOK_RETRY_DELAYS_MS.split(',').map(Number),
    demo: ['1', 'true', 'yes', 'on'].includes(parsed.FIELDOPS_DEMO),
    serviceDatabaseUrls: serviceUrls(parsed),
  };
}

function pickDefined(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(EnvSchema.properties)) {
    const value = env[key];
    if (value !== undefined && value !== '') out[key] = value;
  }
  return out;
}

function serviceUrls(env: Env): Record<ServiceDbRole, string> | null {
  if (!env.DATABASE_URL) return null;
  const urls = {} as Record<ServiceDbRole, string>;
  for (const [role, user] of Object.entries(SERVICE_DB_ROLES) as [ServiceDbRole, string][]) {
    if (env.DATABASE_SERVICE_URL) {
      urls[role] = env.DATABASE_SERVICE_URL;
      continue;
    }
    const url = new URL(env.DATABASE_URL);
    url.username = user;
    url.password = env.DATABASE_SERVICE_PASSWORD ?? '';
    urls[role] = url.toString();
  }
  return urls;
}

/** A development secret kept under DATA_DIR so that every process on one machine shares it. */
function persistentSecret(dataDir: string, name: string): string {
  const dir = resolve(dataDir);
  const file = join(dir, name);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dir, { recursive: true });
  const secret = randomBytes(48).toString('base64url');
  try {
    writeFileSync(file, secret, { flag: 'wx', mode: 0o600 });
    return secret;
  } catch {
    return readFileSync(file, 'utf8').trim(); // another process wrote it first
  }
}
