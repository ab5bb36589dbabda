import { defineConfig } from 'vitest/config';

/**
 * `npm run test:drills`: the multi-process test and the failure drills (test/drills). They start role
 * processes and stop servers, so they run one file at a time, apart from `npm test`.
 */
export default defineConfig({
  test: {
    include: ['test/drills/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
