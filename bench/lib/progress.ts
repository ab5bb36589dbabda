/**
 * A phase's progress while it runs: on a terminal one line rewritten every second, elsewhere (CI, a log file)
 * a line every five seconds. `status` adds the live figures the phase can tell (acks so far, RSS, …).
 */
export function showProgress(label: string, totalS: number, status: () => string = () => ''): () => void {
  const tty = process.stdout.isTTY === true;
  const started = performance.now();
  let ticks = 0;
  const line = () => {
    const elapsed = (performance.now() - started) / 1000;
    return `  … ${label} ${Math.min(elapsed, totalS).toFixed(0)}/${totalS.toFixed(0)} s ${status()}`.trimEnd();
  };
  const timer = setInterval(() => {
    ticks++;
    if (tty) process.stdout.write(`\r\x1b[2K${line()}`);
    else if (ticks % 5 === 0) console.log(line());
  }, 1000);
  timer.unref();
  return () => {
    clearInterval(timer);
    if (tty && ticks > 0) process.stdout.write('\r\x1b[2K');
  };
}
