import { describe, expect, it } from 'vitest';
import { isPublicAddress, parseAllowList } from '../../services/shared/webhook-targets.js';
import { parseRetryAfter } from '../../services/webhooks/http-sender.js';
import { outcomeOf } from '../../services/webhooks/retry-policy.js';

const answer = (statusCode: number | null, retryAfterS: number | null = null) =>
  ({ statusCode, retryAfterS, excerpt: null, error: statusCode === null ? 'ECONNREFUSED' : null, durationMs: 1 });
const DEFAULT_DELAYS = [15_000, 90_000, 600_000, 3_600_000, 10_800_000, 28_800_000, 43_200_000];
const NOW = 1_700_000_000_000;

describe('the retry rule', () => {
  it('delivers on 2xx, fails 4xx at once except 408 and 429, retries 3xx, 5xx and errors', () => {
    for (const code of [200, 201, 204, 299]) expect(outcomeOf(answer(code), 1, DEFAULT_DELAYS, NOW).status).toBe('delivered');
    for (const code of [400, 401, 403, 404, 410, 422]) expect(outcomeOf(answer(code), 1, DEFAULT_DELAYS, NOW).status).toBe('failed');
    for (const code of [301, 302, 408, 429, 500, 502, 503, null]) expect(outcomeOf(answer(code), 1, DEFAULT_DELAYS, NOW).status).toBe('pending');
    expect(outcomeOf({ ...answer(null), refused: true }, 1, DEFAULT_DELAYS, NOW).status).toBe('failed');
  });

  it('retries within 30 s, then within 2 minutes, jittered down by at most a quarter, and gives up after about a day', () => {
    const at = (round: number, random: number) => {
      const outcome = outcomeOf(answer(503), round, DEFAULT_DELAYS, NOW, () => random);
      return outcome.status === 'pending' ? outcome.nextAttemptAt.getTime() - NOW : null;
    };
    expect(at(1, 1)).toBeLessThanOrEqual(30_000);
    expect(at(1, 0)).toBe(11_250);
    expect(at(2, 1)).toBeLessThanOrEqual(120_000);
    const total = DEFAULT_DELAYS.reduce((a, b) => a + b, 0);
    expect(total / 3_600_000).toBeGreaterThan(20);
    expect(total / 3_600_000).toBeLessThan(28);
    expect(outcomeOf(answer(503), DEFAULT_DELAYS.length + 1, DEFAULT_DELAYS, NOW).status).toBe('failed');
  });

  it('waits at least as long as a 429 asks, within a day', () => {
    const outcome = outcomeOf(answer(429, 600), 1, DEFAULT_DELAYS, NOW, () => 1);
    expect(outcome.status === 'pending' && outcome.nextAttemptAt.getTime() - NOW).toBe(600_000);
    const huge = outcomeOf(answer(429, 10 * 86_400), 1, DEFAULT_DELAYS, NOW, () => 1);
    expect(huge.status === 'pending' && huge.nextAttemptAt.getTime() - NOW).toBe(86_400_000);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('120')).toBe(120);
    expect(parseRetryAfter(new Date(NOW + 30_000).toUTCString(), NOW)).toBe(30);
    expect(parseRetryAfter('soon')).toBeNull();
    expect(parseRetryAfter(undefined)).toBeNull();
  });
});

describe('webhook targets', () => {
  it('tells public addresses from loopback, private, link-local, shared and reserved ones', () => {
    for (const a of ['93.184.216.34', '8.8.8.8', '2606:4700::1111']) expect(isPublicAddress(a), a).toBe(true);
    for (const a of ['127.0.0.1', '10.1.2.3', '172.31.0.1', '192.168.0.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
      '224.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1', 'fd00::1', 'ff02::1', '::ffff:10.0.0.1', '::ffff:a00:1', 'not an ip']) {
      expect(isPublicAddress(a), a).toBe(false);
    }
  });

  it('allows listed names, wildcard names, addresses and ranges', () => {
    const allow = parseAllowList('hooks.corp, *.internal.example, 127.0.0.1, 10.0.0.0/8, [fd00::]/8');
    expect(allow.allowsHost('HOOKS.corp')).toBe(true);
    expect(allow.allowsHost('a.internal.example')).toBe(true);
    expect(allow.allowsHost('internal.example.evil')).toBe(false);
    expect(allow.allowsAddress('127.0.0.1')).toBe(true);
    expect(allow.allowsAddress('127.0.0.2')).toBe(false);
    expect(allow.allowsAddress('10.200.0.1')).toBe(true);
    expect(allow.allowsAddress('::ffff:10.1.1.1')).toBe(true);
    expect(allow.allowsAddress('fd12::1')).toBe(true);
    expect(allow.allowsAddress('fe80::1')).toBe(false);
    expect(parseAllowList('').allowsAddress('127.0.0.1')).toBe(false);
  });
});
