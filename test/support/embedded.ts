import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../services/shared/config.js';
import { openEmbeddedDatabase } from '../../services/shared/database.js';
import { createLogger } from '../../services/shared/log.js';
import { MIGRATIONS_DIR, migrate } from '../../services/shared/migrate.js';

/**
 * Hooks that create an embedded database wait this long: PGlite's initdb takes 10 s on a quiet 2-core
 * machine and several times that on a busy one.
 */
export const EMBEDDED_START_TIMEOUT_MS = 240_000;

/**
 * A fresh DATA_DIR holding a migrated embedded database, for tests of the embedded defaults.
 * PGlite's initdb takes 10–20 s on this machine, so a migrated data directory is built once per
 * set of migrations (cached under the system's temp directory, keyed by the migrations' contents and
 * the PGlite version) and each test file starts from a copy of it.
 */
export async function embeddedDataDir(): Promise<string> {
  const template = await migratedTemplate();
  const dataDir = mkdtempSync(join(tmpdir(), 'fieldops-embedded-'));
  cpSync(template, join(dataDir, 'postgres'), { recursive: true });
  return dataDir;
}

async function migratedTemplate(): Promise<string> {
  const cache = join(tmpdir(), `fieldops-pglite-template-${templateKey()}`);
  const ready = join(cache, 'postgres');
  if (existsSync(ready)) return ready;
  const lock = `${cache}.lock`;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (existsSync(ready)) return ready;
      if (lockIsStale(lock)) rmSync(lock, { recursive: true, force: true });
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  try {
    writeFileSync(join(lock, 'pid'), String(process.pid));
    if (existsSync(ready)) return ready;
    const building = mkdtempSync(join(tmpdir(), 'fieldops-pglite-build-'));
    const log = createLogger('silent');
    const database = await openEmbeddedDatabase(building, log);
    try {
      await migrate(loadConfig({ DATA_DIR: building, JWT_SECRET: 'x'.repeat(32) }), log, database);
    } finally {
      await database.close();
    }
    mkdirSync(cache, { recursive: true });
    renameSync(join(building, 'postgres'), ready);
    rmSync(building, { recursive: true, force: true });
    return ready;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function templateKey(): string {
  const hash = createHash('sha256');
  for (const file of readdirSync(MIGRATIONS_DIR).sort()) hash.update(file).update(readFileSync(join(MIGRATIONS_DIR, file)));
  const pglite = JSON.parse(readFileSync(new URL('../../node_modules/@electric-sql/pglite/package.json', import.meta.url), 'utf8')) as { version: string };
  hash.update(pglite.version);
  return hash.digest('hex').slice(0, 16);
}

function lockIsStale(lock: string): boolean {
  try {
    const pid = Number(readFileSync(join(lock, 'pid'), 'utf8'));
    process.kill(pid, 0);
    return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return true;
    // No pid yet: just created — unless its maker died before writing it, long ago.
    try {
      return Date.now() - statSync(lock).mtimeMs > 120_000;
    } catch {
      return false;
    }
  }
}
