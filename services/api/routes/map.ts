import { readFile, readdir } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';
import type { Config } from '../../shared/config.js';

export interface MapRoutesOptions {
  config: Config;
  /** The realtime port once it listens in this process (null when the realtime role runs elsewhere). */
  realtimePort?: () => number | null;
  /** Where `npm run build` put the bundled page (scripts/build-web.mjs). */
  webDir?: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** dist/web beside the compiled or the source tree: services/api/routes → the repository root. */
function defaultWebDir(): string {
  let root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
  if (basename(root) === 'dist') root = dirname(root);
  return join(root, 'dist', 'web');
}

/** The CSP source of a tile URL template: `https://{s}.tile.example.org/…` → `https://*.tile.example.org`. */
function tileImageSource(template: string | undefined): string {
  const origin = template ? /^https?:\/\/[^/]+/.exec(template)?.[0] : undefined;
  if (!origin) return '';
  const source = origin.replace(/\{s\}/g, '*');
  return /[{}]/.test(source) ? source.slice(0, source.indexOf(':') + 1) : source;
}

interface StaticFile {
  body: Buffer;
  type: string;
}

async function loadFiles(dir: string): Promise<Map<string, StaticFile>> {
  const files = new Map<string, StaticFile>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const type = CONTENT_TYPES[extname(path)];
    if (type) files.set(relative(dir, path).split(sep).join('/'), { body: await readFile(path), type });
  }
  return files;
}

/**
 * The live map page at `/map` (built from web/ into dist/web) and `/map/config.json`, which tells the
 * page where the live socket is and which tiles to draw. Outside /v1: the page signs in by itself.
 */
export const mapRoutes: FastifyPluginAsync<MapRoutesOptions> = async (app, options) => {
  const webDir = options.webDir ?? defaultWebDir();
  let files: Promise<Map<string, StaticFile>> | null = null;
  // Read once; a missing build is retried on the next request instead of being remembered.
  const staticFiles = () => (files ??= loadFiles(webDir).catch((err: unknown) => {
    files = null;
    throw err;
  }));
  const tileSource = tileImageSource(options.config.MAP_TILE_URL);
  const contentSecurityPolicy = [
    "default-src 'self'",
    `img-src 'self' data: ${tileSource}`.trim(),
    "style-src 'self' 'unsafe-inline'",
    "connect-src 'self' ws: wss:",
    "frame-ancestors 'none'",
  ].join('; ');
  const routeConfig = { rateLimit: false as const };
  const schema = { hide: true };

  app.get('/map', { config: routeConfig, schema }, async (_request, reply) => {
    const page = (await staticFiles().catch(() => null))?.get('index.html');
    if (!page) {
      return reply.code(503).type('text/plain; charset=utf-8').send('The live map is not built: run `npm run build`.');
    }
    return reply.type(page.type).header('cache-control', 'no-cache').header('content-security-policy', contentSecurityPolicy)
      .header('x-content-type-options', 'nosniff').send(page.body);
  });

  app.get('/map/config.json', { config: routeConfig, schema }, async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    return {
      realtime_url: options.config.PUBLIC_REALTIME_URL ?? null,
      realtime_port: options.realtimePort?.() ?? (options.config.REALTIME_PORT || null),
      tile_url: options.config.MAP_TILE_URL ?? null,
      tile_attribution: options.config.MAP_TILE_ATTRIBUTION ?? null,
    };
  });

  app.get<{ Params: { '*': string } }>('/map/*', { config: routeConfig, schema }, async (request, reply) => {
    const file = (await staticFiles().catch(() => null))?.get(request.params['*']);
    if (!file) return reply.callNotFound();
    // Hashed asset names never change content; the entry files keep their names across builds.
    const cache = request.params['*'].startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache';
    return reply.type(file.type).header('cache-control', cache).header('x-content-type-options', 'nosniff').send(file.body);
  });
};
