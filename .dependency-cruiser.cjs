/**
 * Import boundaries, checked by `npm run lint` (docs/design.md, "Code layout"):
 * roles meet only through the database and the streams, so a role imports nothing of another role;
 * what they share has one home in services/shared; the ingest transports (ingest/) serve the ingest
 * role only; and imports form no cycle. Tests and benches may import anything.
 */
const ROLES = 'api|ingest|geofence|realtime|webhooks';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Imports form a tree: a cycle means two modules that should be one, or a third that both need.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'role-imports-another-role',
      severity: 'error',
      comment: 'Roles meet only through the database and the streams; what two roles share belongs in services/shared.',
      from: { path: `^services/(${ROLES})/` },
      to: { path: `^services/(${ROLES})/`, pathNot: '^services/$1/' },
    },
    {
      name: 'role-imports-the-platform',
      severity: 'error',
      comment: 'services/start.ts and services/cli.ts start the roles; a role does not reach back into them.',
      from: { path: `^(services/(${ROLES}|shared|jobs)/|ingest/)` },
      to: { path: '^services/(start|cli)\\.ts$' },
    },
    {
      name: 'ingest-transports-serve-the-ingest-role',
      severity: 'error',
      comment: 'ingest/ holds the ingest transports; only the ingest role (services/ingest) wires them.',
      from: { path: '^services/', pathNot: '^services/ingest/' },
      to: { path: '^ingest/' },
    },
    {
      name: 'transports-do-not-import-the-role',
      severity: 'error',
      comment: 'The transports reach the role through interfaces of their own (ingest/devices.ts, ingest/intake.ts).',
      from: { path: '^ingest/' },
      to: { path: `^services/(${ROLES}|jobs)/` },
    },
    {
      name: 'shared-imports-no-role',
      severity: 'error',
      comment: 'services/shared is what every role builds on: it depends on no role, job or transport.',
      from: { path: '^services/shared/' },
      to: { path: `^(services/(${ROLES}|jobs)/|ingest/)` },
    },
    {
      name: 'jobs-import-shared-only',
      severity: 'error',
      comment: 'Jobs (services/jobs) run inside whichever role hosts them, so they depend on services/shared only.',
      from: { path: '^services/jobs/' },
      to: { path: `^(services/(${ROLES})/|ingest/)` },
    },
    {
      name: 'demo-imports-shared-only',
      severity: 'error',
      comment: 'The demo drives the platform from outside (MQTT, REST); it builds on services/shared only.',
      from: { path: '^services/demo/' },
      to: { path: `^(services/(${ROLES}|jobs)/|ingest/)` },
    },
    {
      name: 'only-the-platform-starts-the-demo',
      severity: 'error',
      comment: 'services/start.ts and services/cli.ts start the demo; no role, job or shared module knows it.',
      from: { path: `^(services/(${ROLES}|shared|jobs)/|ingest/)` },
      to: { path: '^services/demo/' },
    },
    {
      name: 'production-imports-no-test-code',
      severity: 'error',
      from: { path: '^(services|ingest)/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // TypeScript 7 (the native compiler) has no JavaScript API for dependency-cruiser to parse with; swc parses instead.
    parser: 'swc',
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    // Type-only imports count: a role that names another role's types is coupled to it all the same.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      extensions: ['.ts', '.js', '.json'],
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
      mainFields: ['module', 'main', 'types'],
    },
  },
};
