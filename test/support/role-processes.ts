import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ServerConfig } from '../../services/shared/config.js';
import type { RoleName } from '../../services/start.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const entry = fileURLToPath(new URL('./cli-entry.ts', import.meta.url));
const LOG_LINES_KEPT = 400;

export interface RoleExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One `fieldops start --role …` child process. */
export interface RoleProcess {
  readonly role: RoleName;
  readonly pid: number;
  /** What it printed in its `fieldops is running` line (mqtt, ingest_ws, live, api …), with 127.0.0.1 for localhost. */
  readonly endpoints: Record<string, string>;
  readonly exited: Promise<RoleExit>;
  /** Its exit code, null while it runs. */
  exitCode(): number | null;
  /** Its last log lines (pino JSON, stderr included), for a failure's message. */
  logs(): string;
  signal(signal: NodeJS.Signals): void;
  /** SIGTERM, then waits for the exit (SIGKILL past `timeoutMs`, reported as such). */
  stop(timeoutMs?: number): Promise<RoleExit>;
}

/**
 * The environment a role process gets: the test deployment's servers, Redis prefix, secret and shard
 * count, free ports, no demo, no migration (the test database is migrated already), info logs.
 */
export function roleEnvironment(config: ServerConfig, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: config.DATABASE_URL,
    REDIS_URL: config.REDIS_URL,
    REDIS_PREFIX: config.REDIS_PREFIX,
    DATA_DIR: config.DATA_DIR,
    JWT_SECRET: config.jwtSecret,
    WEBHOOK_SECRET_KEY: config.webhookSecretKey,
    POSITION_SHARDS: String(config.POSITION_SHARDS),
    HOST: '127.0.0.1',
    API_PORT: '0',
    REALTIME_PORT: '0',
    MQTT_PORT: '0',
    FIELDOPS_DEMO: '0',
    MIGRATE_ON_START: 'false',
    LOG_LEVEL: 'info',
    ...extra,
  };
}

/** Starts one role as `fieldops start --role <role>` runs it (from source), and waits until it is running. */
export async function startRoleProcess(config: ServerConfig, role: RoleName, extra: Record<string, string> = {}, startTimeoutMs = 60_000): Promise<RoleProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, 'start', '--role', role], {
    cwd: root,
    env: roleEnvironment(config, extra),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let endpoints: Record<string, string> | null = null;
  let onRunning: (() => void) | null = null;
  const keep = (stream: NodeJS.ReadableStream) => {
    let partial = '';
    stream.on('data', (chunk: Buffer) => {
      const text = partial + chunk.toString();
      const complete = text.split('\n');
      partial = complete.pop()!;
      for (const line of complete) {
        lines.push(line);
        if (lines.length > LOG_LINES_KEPT) lines.shift();
        if (!endpoints && line.includes('"fieldops is running"')) {
          endpoints = endpointsOf(JSON.parse(line) as Record<string, unknown>);
          onRunning?.();
        }
      }
    });
  };
  keep(child.stdout);
  keep(child.stderr);
  const exited = new Promise<RoleExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const logs = () => `${role} (pid ${child.pid}):\n${lines.join('\n')}`;

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`role ${role} did not start within ${startTimeoutMs} ms\n${logs()}`)), startTimeoutMs);
    onRunning = () => { clearTimeout(timer); resolve(); };
    void exited.then((exit) => { clearTimeout(timer); reject(new Error(`role ${role} exited while starting (${JSON.stringify(exit)})\n${logs()}`)); });
  }).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });

  return {
    role,
    pid: child.pid!,
    endpoints: endpoints!,
    exited,
    exitCode: () => child.exitCode ?? (child.signalCode ? -1 : null),
    logs,
    signal: (signal) => { if (child.exitCode === null && child.signalCode === null) child.kill(signal); },
    async stop(timeoutMs = 30_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

function endpointsOf(line: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(line)) {
    if (typeof value === 'string' && /^(mqtt|wss?|https?):\/\//.test(value)) out[key] = value.replace('//localhost:', '//127.0.0.1:');
  }
  return out;
}

/** Several role processes of one deployment, started together and stopped together. */
export class RoleFleet {
  readonly processes: RoleProcess[] = [];

  constructor(private readonly config: ServerConfig, private readonly extra: Record<string, string> = {}) {}

  /** Starts `count` copies of each role (all at once); returns them in the order asked. */
  async start(roles: [RoleName, number][]): Promise<RoleProcess[]> {
    const outcomes = await Promise.allSettled(roles.flatMap(([role, count]) =>
      Array.from({ length: count }, () => startRoleProcess(this.config, role, this.extra))));
    const started = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    this.processes.push(...started); // kept even when another failed, so that stopAll stops them
    const failed = outcomes.find((o) => o.status === 'rejected');
    if (failed) throw failed.reason;
    return started;
  }

  async add(role: RoleName): Promise<RoleProcess> {
    const [started] = await this.start([[role, 1]]);
    return started!;
  }

  of(role: RoleName): RoleProcess[] {
    return this.processes.filter((p) => p.role === role);
  }

  /** SIGTERM to every process still running, in parallel; their exits, in start order. */
  stopAll(timeoutMs?: number): Promise<RoleExit[]> {
    return Promise.all(this.processes.map((p) => p.stop(timeoutMs)));
  }

  logs(): string {
    return this.processes.map((p) => p.logs()).join('\n\n');
  }

  /** Each process's warnings and errors and its last lines: what a failed drill prints. */
  summary(lastLines = 10): string {
    return this.processes.map((p) => {
      const [title, ...lines] = p.logs().split('\n');
      const notable = lines.filter((l) => /"level":(40|50|60)/.test(l)).slice(-20);
      return [title, ...notable, '…', ...lines.slice(-lastLines)].join('\n');
    }).join('\n\n');
  }
}
