/**
 * Bundles the live map (web/) into dist/web with esbuild: one script, one stylesheet (Leaflet's
 * included) and Leaflet's images; index.html is copied. The API tier serves the result at /map.
 *
 * `node scripts/build-web.mjs` always builds; `--if-stale` builds only when web/ changed since the last
 * build, one process at a time (test files start in parallel and each make sure the page exists).
 * The new build is written beside dist/web and swapped in, so a server never reads half a build.
 */
import { copyFile, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist/web');
const stamp = join(outdir, '.built');
const lock = join(root, 'dist/.web-build.lock');
const STALE_LOCK_MS = 60_000;

export async function buildWeb({ minify = true } = {}) {
  const staging = `${outdir}.${process.pid}.${Date.now()}`;
  await mkdir(staging, { recursive: true });
  try {
    await build({
      entryPoints: { map: join(root, 'web/src/main.ts') },
      outdir: staging,
      bundle: true,
      format: 'esm',
      target: ['es2020'],
      minify,
      sourcemap: true,
      publicPath: '/map/',
      assetNames: 'assets/[name]-[hash]',
      loader: { '.png': 'file', '.svg': 'file' },
      logLevel: 'warning',
    });
    await copyFile(join(root, 'web/index.html'), join(staging, 'index.html'));
    await writeFile(join(staging, '.built'), '');
    const previous = `${outdir}.old.${process.pid}.${Date.now()}`;
    await rename(outdir, previous).catch((err) => { if (err.code !== 'ENOENT') throw err; });
    await rename(staging, outdir);
    await rm(previous, { recursive: true, force: true });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return outdir;
}

async function newestSourceMs(dir) {
  let newest = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) newest = Math.max(newest, (await stat(join(entry.parentPath, entry.name))).mtimeMs);
  }
  return newest;
}

async function isStale() {
  const built = await stat(stamp).then((s) => s.mtimeMs, () => 0);
  const sources = Math.max(await newestSourceMs(join(root, 'web')), (await stat(fileURLToPath(import.meta.url))).mtimeMs);
  return built < sources;
}

/** Builds unless an up-to-date build exists; concurrent callers wait for the one that builds. */
export async function buildWebIfStale() {
  await mkdir(dirname(lock), { recursive: true });
  for (;;) {
    if (!(await isStale())) return false;
    try {
      await mkdir(lock);
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      const heldMs = Date.now() - (await stat(lock).then((s) => s.mtimeMs, () => Date.now()));
      if (heldMs > STALE_LOCK_MS) await rm(lock, { recursive: true, force: true });
      await new Promise((resolve) => setTimeout(resolve, 50));
      continue;
    }
    try {
      if (await isStale()) await buildWeb();
      return true;
    } finally {
      await rm(lock, { recursive: true, force: true });
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const started = Date.now();
  const built = process.argv.includes('--if-stale') ? await buildWebIfStale() : (await buildWeb(), true);
  console.log(built ? `web: built ${outdir} in ${Date.now() - started} ms` : 'web: up to date');
}
