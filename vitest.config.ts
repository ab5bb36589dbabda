import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The multi-process test and the failure drills run apart: `npm run test:drills` (vitest.drills.config.ts).
    exclude: [...configDefaults.exclude, 'test/drills/**'],
    // Files own their databases, Redis prefixes and ports, so they run side by side.
    pool: 'forks',
    maxWorkers: 3,
    fileParallelism: true,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
