import { expect } from 'vitest';
import { ERROR_STATUS, type ErrorCode } from '../../services/shared/contracts/errors.js';

/** Statuses a fuzzed request may get: success, or a client error of the contract, or 503 (retry) where the surface says so. */
export function expectContractAnswer(status: number, body: string, what: string, { unavailableOk = false } = {}): void {
  const context = `${what} → ${status} ${body.slice(0, 300)}`;
  expect(status < 500 || (unavailableOk && status === 503), context).toBe(true);
  if (status === 204) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    expect.fail(`not JSON: ${context}`);
  }
  if (status >= 400) expectErrorShape(parsed, status, context);
  else expect(typeof parsed === 'object' && parsed !== null && 'data' in parsed, context).toBe(true);
}

/** `{"error":{"code","message","request_id","issues":[{"path","message"}]}}`, its code matching the status (413 is `bad_request`). */
export function expectErrorShape(parsed: unknown, status: number, context: string): void {
  const error = (parsed as { error?: Record<string, unknown> } | null)?.error;
  expect(error, context).toBeTypeOf('object');
  expect(Object.keys(error!).sort(), context).toEqual(['code', 'issues', 'message', 'request_id']);
  const code = error!.code as ErrorCode;
  expect(ERROR_STATUS[code] === status || (status === 413 && code === 'bad_request') || (status === 405 && code === 'bad_request') || (status === 415 && code === 'bad_request'), context).toBe(true);
  expect(typeof error!.message === 'string' && typeof error!.request_id === 'string', context).toBe(true);
  expect(Array.isArray(error!.issues) && (error!.issues as unknown[]).every((i) =>
    typeof (i as { path?: unknown }).path === 'string' && typeof (i as { message?: unknown }).message === 'string'), context).toBe(true);
}
