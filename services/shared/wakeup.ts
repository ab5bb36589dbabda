/**
 * A worker loop's nap that a signal cuts short: `pause(ms)` waits up to `ms`, or less when `signal()` comes
 * (a notice, a freed slot, close). A signal that comes while the loop is busy is kept for its next pause,
 * which then returns at once: no wake-up is lost between two pauses.
 */
export class Wakeup {
  private signalled = false;
  private wake: (() => void) | null = null;

  signal(): void {
    this.signalled = true;
    this.wake?.();
  }

  pause(ms: number): Promise<void> {
    if (this.signalled) {
      this.signalled = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        if (this.wake === finish) this.wake = null;
        this.signalled = false;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.wake = finish;
    });
  }
}
