import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import pg from 'pg';

export interface PrivatePostgres {
  /** A connection string over the server's private Unix socket. */
  url(database: string): string;
  /** Stops the server (fast shutdown: sessions ended), stays down `downMs`, starts it again on its data. */
  restart(downMs: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A throwaway PostgreSQL server of the machine's own installation, whose extension directory holds the
 * given extra files, for what cannot be tried on the shared server without changing it for every other
 * test (an extension's files installed but its library not preloaded). PostgreSQL finds its share
 * directory relative to its binary, so a copy of the binary beside a share directory of links to the
 * real one serves the real files plus the extra ones. Unix socket only, no TCP port; fsync off.
 */
export async function startPrivatePostgres(extensionFiles: Record<string, string>): Promise<PrivatePostgres> {
  const config = (flag: string) => execFileSync('pg_config', [flag], { encoding: 'utf8' }).trim();
  const [bindir, sharedir, pkglibdir] = [config('--bindir'), config('--sharedir'), config('--pkglibdir')];
  const root = mkdtempSync(join(tmpdir(), 'fieldops-pg-'));
  chmodSync(root, 0o755);
  const at = (path: string) => join(root, path);

  mkdirSync(at(bindir), { recursive: true });
  for (const program of ['postgres', 'initdb']) copyFileSync(join(bindir, program), at(join(bindir, program)));
  mkdirSync(at(join(pkglibdir, '..')), { recursive: true });
  symlinkSync(pkglibdir, at(pkglibdir));
  mkdirSync(at(join(sharedir, 'extension')), { recursive: true });
  for (const entry of readdirSync(sharedir)) {
    if (entry !== 'extension') symlinkSync(join(sharedir, entry), at(join(sharedir, entry)));
  }
  for (const entry of readdirSync(join(sharedir, 'extension'))) {
    symlinkSync(join(sharedir, 'extension', entry), at(join(sharedir, 'extension', entry)));
  }
  for (const [name, text] of Object.entries(extensionFiles)) writeFileSync(at(join(sharedir, 'extension', basename(name))), text);

  // PostgreSQL refuses to run as root: then as the installation's postgres user.
  const asRoot = process.getuid?.() === 0;
  const run = (program: string, args: string[]) =>
    asRoot ? { command: 'setpriv', args: ['--reuid=postgres', '--regid=postgres', '--init-groups', at(join(bindir, program)), ...args] }
      : { command: at(join(bindir, program)), args };
  const data = at('data');
  const socket = at('socket');
  for (const dir of [data, socket]) {
    mkdirSync(dir, { mode: 0o700 });
    if (asRoot) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })));
  }
  const initdb = run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  execFileSync(initdb.command, initdb.args, { stdio: 'ignore' });

  const server = run('postgres', ['-D', data, '-k', socket, '-c', 'listen_addresses=', '-c', 'fsync=off', '-c', 'shared_preload_libraries=']);
  const url = (database: string) => `postgres://postgres@localhost/${database}?host=${encodeURIComponent(socket)}`;
  let child: ChildProcess;
  let exited: Promise<void>;
  const halt = async () => {
    if (child.exitCode === null) child.kill('SIGINT'); // fast shutdown
    await exited;
  };
  const stop = async () => {
    await halt();
    rmSync(root, { recursive: true, force: true });
  };
  const launch = async () => {
    child = spawn(server.command, server.args, { stdio: 'ignore' });
    exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 20_000;
    for (;;) {
      const client = new pg.Client({ connectionString: url('postgres') });
      try {
        await client.connect();
        await client.end();
        return;
      } catch (err) {
        await client.end().catch(() => {});
        if (child.exitCode !== null || Date.now() > deadline) {
          await stop();
          throw new Error(`private PostgreSQL did not start: ${(err as Error).message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  };
  const restart = async (downMs: number) => {
    await halt();
    await new Promise((resolve) => setTimeout(resolve, downMs));
    await launch();
  };

  await launch();
  return { url, restart, stop };
}
