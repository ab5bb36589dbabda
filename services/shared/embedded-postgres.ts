import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import type { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import type pg from 'pg';
import type { Logger } from './log.js';

/** The file name pg (libpq) looks for in a socket directory, for the default port. */
const SOCKET_FILE = '.s.PGSQL.5432';
/** `sun_path` holds 108 bytes on Linux and 104 on macOS; a longer path goes to a private temp directory. */
const MAX_SOCKET_PATH = 100;
/** The only login: the socket checks no password, so it must be reachable by this user only. */
export const EMBEDDED_USER = 'postgres';
const EMBEDDED_DATABASE = 'postgres';

/** Who holds a data directory: written next to the socket while a process serves it. */
export interface EmbeddedHolder {
  pid: number;
  socketDir: string;
}

export class DataDirInUseError extends Error {
  readonly code = 'data_dir_in_use';
  constructor(readonly dataDir: string, readonly holder: EmbeddedHolder) {
    super(`the embedded database in ${dataDir} is in use by process ${holder.pid}`);
  }
}

export interface EmbeddedPostgresOptions {
  /** DATA_DIR: the database goes to `postgres/`, the socket to `run/` (mode 0700). */
  dataDir: string;
  log: Logger;
  /** Connections the socket accepts (the pools of every role, plus the owner's). */
  maxConnections?: number;
}

/** The connection settings for pg: the socket directory, the one login, the one database. */
export function embeddedConnection(socketDir: string): pg.ClientConfig {
  return { host: socketDir, user: EMBEDDED_USER, database: EMBEDDED_DATABASE };
}

/**
 * PostgreSQL in this process (PGlite: PostgreSQL compiled to WebAssembly), its data under
 * `DATA_DIR/postgres`, served to the ordinary `pg` driver by pglite-socket's multiplexer on a Unix
 * socket inside `DATA_DIR/run` (mode 0700). pglite-socket checks no password, so the socket is never
 * on a shared or public address. One process at a time holds a data directory (`run/holder.json`).
 */
export class EmbeddedPostgres {
  private closing: Promise<void> | null = null;

  private constructor(
    readonly db: PGlite,
    private readonly server: PGLiteSocketServer,
    readonly socketDir: string,
    readonly dataDir: string,
    readonly version: string,
    private readonly holderFile: string,
    private readonly privateSocketDir: boolean,
  ) {}

  get connection(): pg.ClientConfig {
    return embeddedConnection(this.socketDir);
  }

  /** The process serving `dataDir` and its socket, when one is alive. */
  static holderOf(dataDir: string): EmbeddedHolder | null {
    const file = join(resolve(dataDir), 'run', 'holder.json');
    if (!existsSync(file)) return null;
    try {
      const holder = JSON.parse(readFileSync(file, 'utf8')) as EmbeddedHolder;
      return isAlive(holder.pid) && existsSync(join(holder.socketDir, SOCKET_FILE)) ? holder : null;
    } catch {
      return null;
    }
  }

  static async start({ dataDir, log, maxConnections = 100 }: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
    const root = resolve(dataDir);
    const runDir = join(root, 'run');
    mkdirSync(runDir, { recursive: true, mode: 0o700 });
    chmodSync(runDir, 0o700);
    const holderFile = join(runDir, 'holder.json');
    const inRunDir = join(runDir, SOCKET_FILE).length <= MAX_SOCKET_PATH;
    const socketDir = inRunDir ? runDir : mkdtempSync(join(tmpdir(), 'fieldops-pg-'));
    takeHolderFile(root, holderFile, { pid: process.pid, socketDir });

    let db: PGlite | null = null;
    try {
      // Loaded only here: processes on a PostgreSQL server never load the WebAssembly build.
      const { PGlite } = await import('@electric-sql/pglite');
      const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
      const pgdata = join(root, 'postgres');
      const fresh = !existsSync(join(pgdata, 'PG_VERSION'));
      if (fresh) log.info({ dir: pgdata }, 'creating the embedded database (first start only: from a few seconds to a minute)');
      db = await PGlite.create({ dataDir: pgdata, username: EMBEDDED_USER, database: EMBEDDED_DATABASE });
      const version = (await db.query<{ server_version: string }>('show server_version')).rows[0]!.server_version;
      const socketPath = join(socketDir, SOCKET_FILE);
      rmSync(socketPath, { force: true }); // left by a process that died; the holder file is ours now
      const server = new PGLiteSocketServer({ db, path: socketPath, maxConnections });
      await server.start();
      chmodSync(socketPath, 0o600);
      log.debug({ socket: socketPath, version }, 'embedded PostgreSQL listening');
      return new EmbeddedPostgres(db, server, socketDir, pgdata, version, holderFile, !inRunDir);
    } catch (err) {
      await db?.close().catch(() => {});
      rmSync(holderFile, { force: true });
      if (!inRunDir) rmSync(socketDir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Stops the socket (open transactions roll back), then closes the database cleanly. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.server.stop();
      // stop() detaches the handlers without waiting for their rollbacks; let them run first.
      await this.db.runExclusive(async () => {});
      await this.db.close();
      rmSync(join(this.socketDir, SOCKET_FILE), { force: true });
      if (this.privateSocketDir) rmSync(this.socketDir, { recursive: true, force: true });
      rmSync(this.holderFile, { force: true });
    })();
    return this.closing;
  }
}

function takeHolderFile(dataDir: string, file: string, holder: EmbeddedHolder): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, JSON.stringify(holder), { flag: 'wx', mode: 0o600 });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let current: EmbeddedHolder | null = null;
    try {
      current = JSON.parse(readFileSync(file, 'utf8')) as EmbeddedHolder;
    } catch {
      // unreadable: written by a process that died mid-write
    }
    if (current && isAlive(current.pid)) throw new DataDirInUseError(dataDir, current);
    unlinkSync(file);
  }
  throw new Error(`cannot take ${file}: another process keeps taking it`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
