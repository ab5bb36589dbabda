import { parseArgs } from 'node:util';
import type { Logger } from '../shared/log.js';
import { provisionOverApi, type ApiCredentials } from './demo-provision.js';
import { FleetSimulator } from './fleet-simulator.js';

export const DEMO_USAGE = `fieldops demo --target API_URL [--mqtt MQTT_URL]
              (--api-key KEY | --email E --password P --organization ORG_ID)
              [--fix-interval-ms 1000] [--punch-interval-ms 20000]
  provisions the demo fleet in that organization through the API (devices named "Demo …",
  found again on the next run) and drives it over MQTT until Ctrl-C.
  MQTT_URL defaults to mqtt://<API host>:1883.`;

interface DemoCommand {
  apiUrl: string;
  mqttUrl: string;
  credentials: ApiCredentials;
  fixIntervalMs: number;
  punchIntervalMs: number;
}

export function parseDemoArgs(args: string[]): DemoCommand {
  const { values } = parseArgs({
    args,
    options: {
      target: { type: 'string' }, mqtt: { type: 'string' }, 'api-key': { type: 'string' },
      email: { type: 'string' }, password: { type: 'string' }, organization: { type: 'string' },
      'fix-interval-ms': { type: 'string' }, 'punch-interval-ms': { type: 'string' },
    },
  });
  if (!values.target) throw new Error(`demo needs --target\n\n${DEMO_USAGE}`);
  let apiUrl: URL;
  try {
    apiUrl = new URL(values.target);
  } catch {
    throw new Error(`--target must be the API's URL, e.g. http://localhost:8080 (got "${values.target}")`);
  }
  let credentials: ApiCredentials;
  if (values['api-key']) credentials = { apiKey: values['api-key'] };
  else if (values.email && values.password && values.organization) {
    credentials = { email: values.email, password: values.password, organizationId: values.organization };
  } else throw new Error(`demo needs --api-key, or --email, --password and --organization\n\n${DEMO_USAGE}`);
  const interval = (name: string, fallback: number) => {
    const raw = values[name as keyof typeof values] as string | undefined;
    const ms = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(ms) || ms < 100) throw new Error(`--${name} must be an integer of at least 100`);
    return ms;
  };
  return {
    apiUrl: apiUrl.toString(),
    mqttUrl: values.mqtt ?? `mqtt://${apiUrl.hostname}:1883`,
    credentials,
    fixIntervalMs: interval('fix-interval-ms', 1000),
    punchIntervalMs: interval('punch-interval-ms', 20_000),
  };
}

/** `fieldops demo --target …`: the simulator against any deployment, until SIGINT or SIGTERM. */
export async function runDemoCommand(args: string[], log: Logger): Promise<number> {
  const command = parseDemoArgs(args);
  const devices = await provisionOverApi(command.apiUrl, command.credentials);
  const simulator = new FleetSimulator({
    mqttUrl: command.mqttUrl, devices, log, fixIntervalMs: command.fixIntervalMs, punchIntervalMs: command.punchIntervalMs,
  });
  simulator.start();
  console.log(`driving ${devices.length} demo devices against ${command.apiUrl} over ${command.mqttUrl}; Ctrl-C stops`);
  const report = setInterval(() => log.info({ ...simulator.stats }, 'demo fleet'), 10_000);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  clearInterval(report);
  await simulator.close();
  log.info({ ...simulator.stats }, 'demo fleet stopped');
  return 0;
}
