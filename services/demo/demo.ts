import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Database } from '../shared/database.js';
import type { Pool } from '../shared/db.js';
import type { Logger } from '../shared/log.js';
import { seedDemo } from './demo-seed.js';
import { FleetSimulator, type SimulatedDevice } from './fleet-simulator.js';

/** Two processes starting on one empty database must not both seed. */
const SEED_LOCK = 0x66_64_65_6d; // "fdem"
const FLEET_FILE = 'demo-fleet.json';

export interface DemoLogin {
  email: string;
  password: string;
  organizationId: string;
}

export interface RunningDemo {
  /** Present only on the start that seeded: the admin login, to print once. */
  login: DemoLogin | null;
  organizationId: string;
  simulator: FleetSimulator;
  close(): Promise<void>;
}

/** What a later start needs to drive the same fleet: its organization and its devices' tokens (DATA_DIR, mode 0600). */
interface FleetFile {
  organization_id: string;
  devices: SimulatedDevice[];
}

export interface DemoOptions {
  database: Database;
  /** `fieldops_worker` sees every organization (its read policy), which the owner under forced RLS does not. */
  workerPool: Pool;
  dataDir: string;
  mqttUrl: string;
  log: Logger;
  fixIntervalMs?: number;
  punchIntervalMs?: number;
}

/**
 * The demo of `npm start` (docs/design.md, "The demo"): on a database that holds no organization, seeds the
 * demo organization and keeps its devices' tokens under DATA_DIR; then (on that start and every later
 * one, while the organization exists) drives its fleet over MQTT. Returns null when there is nothing
 * to drive (the database had organizations of its own).
 */
export async function startDemo(options: DemoOptions): Promise<RunningDemo | null> {
  const { database, workerPool, log } = options;
  const fleetFile = join(resolve(options.dataDir), FLEET_FILE);
  const owner = database.ownerClient();
  await owner.connect();
  let login: DemoLogin | null = null;
  let fleet: FleetFile | null = null;
  try {
    await owner.query('select pg_advisory_lock($1)', [SEED_LOCK]);
    const { rows: [state] } = await workerPool.query<{ any: boolean }>('select exists (select 1 from organizations) as any');
    if (!state!.any) {
      const seed = await seedDemo(owner);
      fleet = { organization_id: seed.organizationId, devices: seed.devices };
      writeFileSync(fleetFile, JSON.stringify(fleet, null, 2), { mode: 0o600 });
      login = { email: seed.adminEmail, password: seed.adminPassword, organizationId: seed.organizationId };
      log.info({ organization_id: seed.organizationId, devices: seed.devices.length }, 'demo organization seeded');
    } else {
      fleet = await previousFleet(fleetFile, workerPool, log);
    }
  } finally {
    await owner.query('select pg_advisory_unlock($1)', [SEED_LOCK]).catch(() => {});
    await owner.end();
  }
  if (!fleet) return null;
  const simulator = new FleetSimulator({
    mqttUrl: options.mqttUrl, devices: fleet.devices, log: log.child({ demo: true }),
    fixIntervalMs: options.fixIntervalMs, punchIntervalMs: options.punchIntervalMs,
  });
  simulator.start();
  return { login, organizationId: fleet.organization_id, simulator, close: () => simulator.close() };
}

/** The fleet seeded by an earlier start, if its organization is still there. */
async function previousFleet(file: string, workerPool: Pool, log: Logger): Promise<FleetFile | null> {
  if (!existsSync(file)) return null;
  let fleet: FleetFile;
  try {
    fleet = JSON.parse(readFileSync(file, 'utf8')) as FleetFile;
  } catch (err) {
    log.warn({ err, file }, 'demo fleet file unreadable; the demo fleet stays parked');
    return null;
  }
  const { rowCount } = await workerPool.query('select 1 from organizations where id = $1', [fleet.organization_id]);
  return rowCount ? fleet : null;
}

/** The one line that carries the demo login (printed once, when the organization is seeded). */
export function demoLoginLine(login: DemoLogin): string {
  return `demo login: email=${login.email} password=${login.password} organization_id=${login.organizationId}`;
}
