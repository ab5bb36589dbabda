import { describe, expect, it } from 'vitest';
import { compareStreamIds, formatStreamId, parseStreamId } from '../../services/shared/stream-ids.js';

/** Stream ids are the cursors of the live socket's `since` and of the realtime reader: compared as numbers, not text. */
describe('stream ids', () => {
  it('parse what a client may send as since, and nothing else', () => {
    expect(parseStreamId('1700000000000-5')).toEqual({ ms: '1700000000000', seq: '5' });
    expect(parseStreamId('1700000000000')).toEqual({ ms: '1700000000000', seq: '0' });
    expect(formatStreamId(parseStreamId('0001-02')!)).toBe('1-2');
    for (const bad of ['', '-', '1-', '-1', '1-2-3', 'abc', '1.5-0', ' 1-0', '9223372036854775808-0', '1-9223372036854775808']) {
      expect(parseStreamId(bad)).toBeNull();
    }
    expect(parseStreamId('9223372036854775807-9223372036854775807')).not.toBeNull();
  });

  it('order by time, then by sequence, as numbers', () => {
    const ids = ['10-0', '9-5', '9-10', '100-0', '10-1', '9-9'];
    expect([...ids].sort(compareStreamIds)).toEqual(['9-5', '9-9', '9-10', '10-0', '10-1', '100-0']);
    expect(compareStreamIds('5-3', '5-3')).toBe(0);
    expect(compareStreamIds('1700000000000-0', '999999999999-99')).toBeGreaterThan(0);
  });
});
