import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { PositionPublisher } from '../../bench/lib/position-publisher.js';
import { decodePositions, streamNames } from '../../services/shared/contracts/stream-codec.js';
import { InProcessStreams } from '../../services/shared/in-process-bus.js';
import type { StreamBus } from '../../services/shared/bus.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const names = streamNames('pp:', 4);

/** Every position appended so far, over all shards (the fan-out bench's streams, on the in-process bus). */
async function appended(bus: StreamBus): Promise<number> {
  const counts = await Promise.all(names.allPositionShards().map(async (s) => decodePositions(await bus.range(s, '-', '+', 1_000_000)).length));
  return counts.reduce((a, b) => a + b, 0);
}

/**
 * The fan-out bench's publisher: unpaced, it publishes exactly up to the window the bench gives it (what the
 * sockets have taken plus the window), so the offer follows the slower side instead of capping it.
 */
describe('bench position publisher', () => {
  let publisher: PositionPublisher | null = null;
  afterEach(() => publisher?.stop());

  it('unpaced, publishes up to its limit and no further, and resumes as the limit rises', async () => {
    const bus = new InProcessStreams().connect();
    publisher = new PositionPublisher(bus, names, randomUUID());
    publisher.start(null);
    await sleep(50);
    expect(await appended(bus)).toBe(0);
    publisher.limit = 120;
    await sleep(50);
    expect(await appended(bus)).toBe(120);
    publisher.limit = 5_120; // more than one append's worth: spread over a few ticks
    await sleep(300);
    expect(await appended(bus)).toBe(5_120);
    expect(publisher.published).toBe(5_120);
  });

  it('at a fixed rate, publishes on schedule without a limit', async () => {
    const bus = new InProcessStreams().connect();
    publisher = new PositionPublisher(bus, names, randomUUID());
    const startedMs = Date.now();
    publisher.start(2_000);
    await sleep(250);
    publisher.stop();
    const elapsedS = (Date.now() - startedMs) / 1000;
    const count = await appended(bus);
    expect(count).toBeGreaterThan(0);
    expect(count).toBeLessThanOrEqual(Math.ceil(2_000 * elapsedS));
    expect(count).toBeGreaterThan(2_000 * elapsedS * 0.5);
  });
});
