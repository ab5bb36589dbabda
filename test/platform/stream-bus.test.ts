import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { deleteKeysWithPrefix, RedisStreamBus } from '../../services/shared/redis-bus.js';
import { TEST_REDIS_URL } from '../support/database.js';

const prefix = `t${randomBytes(5).toString('hex')}:`;
const sut = new RedisStreamBus(TEST_REDIS_URL, prefix);

afterAll(async () => {
  await sut.close();
  await deleteKeysWithPrefix(TEST_REDIS_URL, prefix);
});

async function fill(stream: string, count: number): Promise<string[]> {
  return sut.append(Array.from({ length: count }, (_, i) => ({ stream, fields: { p: String(i) } })), 1_000_000);
}

describe('trimming a stream by its consumer group', () => {
  it('keeps every entry the group has not been handed or has not acknowledged', async () => {
    const stream = `${prefix}positions:0`;
    await sut.ensureGroup(stream, 'geofence', '0');
    const ids = await fill(stream, 10);
    const [handed] = await sut.readGroup('geofence', 'w1', [stream], { blockMs: 10, count: 6 });
    expect(handed!.entries.map((e) => e.id)).toEqual(ids.slice(0, 6));
    await sut.ack(stream, 'geofence', ids.slice(0, 4));

    await sut.trimConsumed(stream, 'geofence');
    expect((await sut.range(stream, '-', '+', 100)).map((e) => e.id)).toEqual(ids.slice(4));

    await sut.ack(stream, 'geofence', ids.slice(4, 6));
    await sut.trimConsumed(stream, 'geofence');
    expect((await sut.range(stream, '-', '+', 100)).map((e) => e.id)).toEqual(ids.slice(5));
  });

  it('leaves a stream alone when the group does not exist (nobody has evaluated anything)', async () => {
    const stream = `${prefix}positions:1`;
    const ids = await fill(stream, 5);
    await sut.trimConsumed(stream, 'geofence');
    await sut.trimConsumed(`${prefix}no-such-stream`, 'geofence');
    expect((await sut.range(stream, '-', '+', 100)).map((e) => e.id)).toEqual(ids);
  });
});
