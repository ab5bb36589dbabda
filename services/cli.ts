import net from 'node:net';
import { parseArgs } from 'node:util';
import type pg from 'pg';
import { DEMO_USAGE, runDemoCommand } from './demo/demo-command.js';
import { demoLoginLine } from './demo/demo.js';
import { loadConfig, refusePlaceholderSecrets, type Config } from './shared/config.js';
import { openDatabase } from './shared/database.js';
import { createLogger, type Logger } from './shared/log.js';
import { migrate } from './shared/migrate.js';
import { ROLE_NAMES, availableRoles, startPlatform, type RoleName } from './start.js';
import { PLANS } from './shared/contracts/domain.js';
import { createTenant, updateTenant } from './shared/tenants.js';

const HELP = `fieldops — real-time telemetry and operations for field-service companies

Usage:
  fieldops migrate                         apply pending database migrations
  fieldops start [--role ROLE[,ROLE…]]     run the platform (every role by default)
                                           roles: ${availableRoles().join(', ')}
  fieldops tenant create --name N --plan ${PLANS.join('|')} [--addons api,…]
                         --admin-email E --admin-password P
                                           create an organization and its admin; prints its id
  fieldops tenant update ORG_ID [--plan P] [--addons api,…]
  ${DEMO_USAGE}
  fieldops --help

Configuration comes from environment variables (see README): DATABASE_URL, REDIS_URL, API_PORT,
REALTIME_PORT, MQTT_PORT, DATA_DIR, FIELDOPS_DEMO, LOG_LEVEL, … Without DATABASE_URL the database is
the embedded PostgreSQL under DATA_DIR; without REDIS_URL the stream bus is in-process.`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(HELP);
    return command ? 0 : 1;
  }
  switch (command) {
    case 'migrate':
      return runMigrate();
    case 'start':
      return runStart(rest);
    case 'tenant':
      return runTenant(rest);
    case 'demo': {
      const config = loadConfig();
      return runDemoCommand(rest, createLogger(config.LOG_LEVEL, { cmd: 'demo' }));
    }
    default:
      console.error(`unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}

async function runMigrate(): Promise<number> {
  const config = loadConfig();
  refusePlaceholderSecrets(config);
  const log = createLogger(config.LOG_LEVEL, { cmd: 'migrate' });
  // The embedded database may be served by a running `fieldops start`: migrate through its socket then.
  const database = await openDatabase(config, log, { attach: true });
  try {
    const { applied } = await migrate(config, log, database);
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
  } finally {
    await database.close();
  }
  return 0;
}

async function runStart(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { role: { type: 'string', multiple: true } } });
  const roles = (values.role ?? []).flatMap((r) => r.split(',')).map((r) => r.trim()).filter(Boolean);
  for (const role of roles) {
    if (!(ROLE_NAMES as readonly string[]).includes(role)) throw new Error(`unknown role "${role}" (roles: ${ROLE_NAMES.join(', ')})`);
  }
  const config = loadConfig();
  refusePlaceholderSecrets(config);
  const log = createLogger(config.LOG_LEVEL);
  await avoidTakenDefaultPorts(config, log);
  const platform = await startPlatform(config, log, roles.length ? (roles as RoleName[]) : availableRoles());
  const endpoints = Object.assign({}, ...platform.roles.map((r) => r.endpoints)) as Record<string, string>;
  const { database, backplane } = platform.runtime;
  log.info({ roles: platform.roles.map((r) => r.name), database: database.description, bus: backplane.description, ...endpoints }, 'fieldops is running');
  console.log(`  ${'database'.padEnd(10)} ${database.description}`);
  console.log(`  ${'bus'.padEnd(10)} ${backplane.description}`);
  for (const [what, where] of Object.entries(endpoints)) console.log(`  ${what.padEnd(10)} ${where}`);
  if (platform.demo?.login) console.log(demoLoginLine(platform.demo.login));
  else if (platform.demo) console.log(`  ${'demo'.padEnd(10)} driving the demo fleet of organization ${platform.demo.organizationId} (its login was printed at the first start)`);

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'shutting down: no new work, flushing what is held');
      platform.close().then(resolve, (err) => { log.error({ err }, 'shutdown failed'); resolve(); });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  log.info('stopped');
  return 0;
}

const PORT_VARIABLES = ['API_PORT', 'REALTIME_PORT', 'MQTT_PORT'] as const;

/**
 * A port left at its default that another program holds (a local Mosquitto on 1883, typically) is
 * replaced by a free one, with a warning: `npm start` should come up on a developer's machine as it is.
 * A port set explicitly is used as given, and a clash is an error.
 */
async function avoidTakenDefaultPorts(config: Config, log: Logger): Promise<void> {
  for (const variable of PORT_VARIABLES) {
    if (process.env[variable] !== undefined || config[variable] === 0) continue;
    if (await portIsFree(config.HOST, config[variable])) continue;
    log.warn({ variable, port: config[variable] }, `${variable} ${config[variable]} is in use; picking a free port (set ${variable} to choose one)`);
    config[variable] = 0;
  }
}

function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, host, () => probe.close(() => resolve(true)));
  });
}

async function runTenant(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      name: { type: 'string' }, plan: { type: 'string' }, addons: { type: 'string' },
      'admin-email': { type: 'string' }, 'admin-password': { type: 'string' },
    },
  });
  const config = loadConfig();
  const addons = values.addons !== undefined ? values.addons.split(',').map((a) => a.trim()).filter(Boolean) : undefined;
  return withOwner(config, async (db) => {
    if (sub === 'create') {
      const missing = ['name', 'plan', 'admin-email', 'admin-password'].filter((k) => !values[k as keyof typeof values]);
      if (missing.length) throw new Error(`tenant create needs ${missing.map((m) => `--${m}`).join(', ')}`);
      const org = await createTenant(db, {
        name: values.name!, plan: values.plan!, addons: addons ?? [],
        adminEmail: values['admin-email']!, adminPassword: values['admin-password']!,
      });
      console.log(org.id);
      console.error(`created organization "${org.name}" (${org.plan}) with admin ${values['admin-email']}`);
      return 0;
    }
    if (sub === 'update') {
      const id = positionals[0];
      if (!id) throw new Error('tenant update needs the organization id');
      const org = await updateTenant(db, id, { plan: values.plan, addons });
      console.log(JSON.stringify(org));
      return 0;
    }
    throw new Error('tenant needs "create" or "update" (see fieldops --help)');
  });
}

/** The owner's connection; to a running `fieldops start`'s embedded database when one serves DATA_DIR. */
async function withOwner<T>(config: Config, work: (db: pg.Client) => Promise<T>): Promise<T> {
  const database = await openDatabase(config, createLogger(config.LOG_LEVEL, { cmd: 'tenant' }), { attach: true });
  try {
    if (database.kind === 'embedded' && config.MIGRATE_ON_START) await migrate(config, undefined, database);
    const db = database.ownerClient();
    await db.connect();
    try {
      return await work(db);
    } finally {
      await db.end();
    }
  } finally {
    await database.close();
  }
}
