import { defineConfig } from 'vitest/config';
// Inside the sfc workspace, resolve @sfc/core from its sources (the `@sfc/source` export
// condition); a published plugin would test against the installed @sfc/core build instead.
export default defineConfig({
  resolve: { conditions: ['@sfc/source'] },
  ssr: { resolve: { conditions: ['@sfc/source'] } },
  test: {
    include: ['src/**/*.test.ts'],
    // JSON report summed up by the workspace's tools/run-tests.mjs
    reporters: ['default', 'json'],
    outputFile: { json: '.test-results/vitest.json' },
  },
});
