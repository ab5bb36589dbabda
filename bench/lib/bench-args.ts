/**
 * The bench runner's command line (bench/README.md): `npm run bench [-- [scenario…] [options]]`, `npm run bench -- compare A B`
 * or `npm run bench -- show RESULT`.
 * The options every scenario understands are taken out here; the rest go to the scenario untouched, which reads
 * its own (`--phases`, `--sockets`, …). Pure: no I/O, so tests check it directly.
 */

export interface BenchSettings {
  /** Scenarios to run, in order. */
  scenarios: string[];
  /** Short durations and small sizes: every scenario in under five minutes. */
  quick: boolean;
  /** Host of a running platform to measure instead of starting one (scenarios that can). */
  target: string | null;
  /** Seconds each measured phase lasts; null: the scenario's own default. */
  durationS: number | null;
  devices: number | null;
  /** Offered load per second (fixes/s for e2e and soak); null: the scenario's default. */
  rate: number | null;
  /** Options for the scenarios themselves, in the order given. */
  rest: string[];
}

export type BenchCommand = { command: 'run'; settings: BenchSettings } | { command: 'compare'; a: string; b: string } | { command: 'show'; file: string } | { command: 'help' };

export class UsageError extends Error {}

/** `30s`, `2m`, `500ms` or a bare number of seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new UsageError(`not a duration: "${text}" (say 30s, 2m or 500ms)`);
  const value = Number(match[1]);
  const unit = match[2] ?? 's';
  const seconds = unit === 'ms' ? value / 1000 : unit === 'm' ? value * 60 : unit === 'h' ? value * 3600 : value;
  if (seconds <= 0) throw new UsageError(`a duration must be above zero: "${text}"`);
  return seconds;
}

function positiveInteger(name: string, text: string | undefined): number {
  const value = Number(text);
  if (text === undefined || !Number.isInteger(value) || value <= 0) throw new UsageError(`--${name} needs a whole number above zero, not "${text ?? ''}"`);
  return value;
}

/** Reads the arguments after `npm run bench --`; `known` lists the scenarios present, in their running order. */
export function parseBenchArgs(argv: readonly string[], known: readonly string[]): BenchCommand {
  if (argv[0] === 'compare') {
    if (argv.length !== 3) throw new UsageError('usage: npm run bench -- compare A.json B.json');
    return { command: 'compare', a: argv[1]!, b: argv[2]! };
  }
  if (argv[0] === 'show') {
    if (argv.length !== 2) throw new UsageError('usage: npm run bench -- show RESULT.json');
    return { command: 'show', file: argv[1]! };
  }
  if (argv.includes('--help') || argv.includes('-h')) return { command: 'help' };
  const settings: BenchSettings = { scenarios: [], quick: false, target: null, durationS: null, devices: null, rate: null, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    const eq = raw.startsWith('--') ? raw.indexOf('=') : -1;
    const name = eq > 0 ? raw.slice(2, eq) : raw.startsWith('--') ? raw.slice(2) : null;
    const inline = eq > 0 ? raw.slice(eq + 1) : undefined;
    const value = () => {
      if (inline !== undefined) return inline;
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new UsageError(`--${name} needs a value`);
      i++;
      return next;
    };
    if (name === null) {
      if (!known.includes(raw)) throw new UsageError(`unknown scenario "${raw}" (scenarios: ${known.join(', ')})`);
      if (settings.rest.length > 0) throw new UsageError(`name scenarios before their options: "${raw}"`);
      settings.scenarios.push(raw);
    } else if (name === 'quick') {
      settings.quick = true;
    } else if (name === 'target') {
      settings.target = value();
    } else if (name === 'duration') {
      settings.durationS = parseDuration(value());
    } else if (name === 'devices') {
      settings.devices = positiveInteger(name, value());
    } else if (name === 'rate') {
      settings.rate = positiveInteger(name, value());
    } else {
      // A scenario's own option: passed on with its value, if it has one.
      settings.rest.push(raw);
      const next = argv[i + 1];
      if (inline === undefined && next !== undefined && !next.startsWith('--') && !known.includes(next)) settings.rest.push(argv[++i]!);
    }
  }
  if (settings.scenarios.length === 0) settings.scenarios = [...known];
  if (settings.scenarios.length > 1 && settings.rest.length > 0) {
    throw new UsageError(`scenario options (${settings.rest.join(' ')}) need one scenario: they mean different things to each`);
  }
  return { command: 'run', settings };
}
