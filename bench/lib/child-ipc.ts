/**
 * Bench helper processes (load generators, receivers, bare baselines) and the small request/reply protocol the
 * bench speaks with them over IPC: a message out, the first message back carrying the expected key.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = dirname(dirname(fileURLToPath(import.meta.url)));

/** Forks a helper script (path relative to bench/) under tsx. */
export function child(file: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  return fork(join(benchDir, file), [], { execArgv: ['--import', 'tsx'], env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

/** The value under `key` of the next message holding it; rejects if the process exits first. */
export function reply<T>(proc: ChildProcess, key: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`child exited (${code}) before "${key}"`));
    const onMessage = (m: Record<string, unknown>) => {
      if (key in m) {
        proc.off('message', onMessage);
        proc.off('exit', onExit);
        resolve(m[key] as T);
      }
    };
    proc.on('message', onMessage);
    proc.once('exit', onExit);
  });
}

export async function ask<T>(proc: ChildProcess, message: object, key: string): Promise<T> {
  const answer = reply<T>(proc, key);
  proc.send(message);
  return answer;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
