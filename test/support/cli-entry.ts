// Runs the CLI from source, as bin/fieldops.js runs it from dist/.
import { main } from '../../services/cli.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => { console.error(err instanceof Error ? err.message : err); process.exitCode = 1; },
);
