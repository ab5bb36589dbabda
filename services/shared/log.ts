import { pino, type Logger } from 'pino';

export type { Logger };

/** One logger for the process; roles take children (`log.child({ role: 'ingest' })`). */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { pid: process.pid, ...bindings },
    redact: {
      paths: ['password', '*.password', 'token', '*.token', 'key', '*.key', 'secret', '*.secret',
        'req.headers.authorization', 'headers.authorization'],
      censor: '[redacted]',
    },
  });
}
