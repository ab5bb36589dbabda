export interface WaitOptions {
  /** What is waited for, named in the failure. Default: the probe's source. */
  what?: string;
  timeoutMs?: number;
  intervalMs?: number;
}

type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

/**
 * Polls `probe` until it returns a truthy value, and returns that value; fails the test after `timeoutMs`
 * (15 s by default). `options` may be just the description: `waitFor(probe, 'the first PUBACK')`.
 */
export async function waitFor<T>(probe: () => T | Promise<T>, options: string | WaitOptions = {}): Promise<Truthy<T>> {
  const { what = probe.toString().slice(0, 200), timeoutMs = 15_000, intervalMs = 25 } = typeof options === 'string' ? { what: options } : options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as Truthy<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** The promise's value, or a failure naming `what` once `ms` have passed without it. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    })]);
  } finally {
    clearTimeout(timer);
  }
}
