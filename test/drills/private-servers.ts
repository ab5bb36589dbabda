import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/platform.js';
import { startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres.js';
import type { TestServers } from '../support/database.js';
import { waitFor } from '../support/wait.js';

/**
 * A redis-server of the drill's own, with an append-only file, so that stopping it is a restart with its
 * data (as a production Redis with persistence), and the shared Redis is never touched.
 */
export class PrivateRedis {
  private child: ChildProcess | null = null;
  private readonly dir = mkdtempSync(join(tmpdir(), 'fieldops-redis-'));

  private constructor(readonly port: number) {}

  static async start(): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort());
    await redis.launch();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  private async launch(): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir,
      '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], { stdio: 'ignore' });
    await waitFor(() => new Promise<boolean>((resolve) => {
      const socket = net.connect(this.port, '127.0.0.1', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    }), 'the private redis-server to listen');
  }

  /** Shuts down (SIGTERM: the append-only file is complete), stays down `downMs`, starts again on its data. */
  async restart(downMs: number): Promise<void> {
    await this.halt();
    await new Promise((resolve) => setTimeout(resolve, downMs));
    await this.launch();
  }

  private async halt(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }

  async stop(): Promise<void> {
    await this.halt();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface DrillServers {
  postgres: PrivatePostgres;
  redis: PrivateRedis;
  /** For createTestDatabase. */
  servers: TestServers;
  stop(): Promise<void>;
}

/** A private PostgreSQL and Redis for one drill file, to stop and restart at will. */
export async function startDrillServers(): Promise<DrillServers> {
  const [postgres, redis] = await Promise.all([startPrivatePostgres({}), PrivateRedis.start()]);
  return {
    postgres,
    redis,
    servers: { postgres: postgres.url('postgres'), redis: redis.url },
    stop: async () => { await Promise.all([postgres.stop(), redis.stop()]); },
  };
}
