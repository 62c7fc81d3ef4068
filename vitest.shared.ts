// Shared vitest settings: resolve sibling packages from source (the `@sfc/source` export condition),
// so tests never need a prior build, and write a JSON report that tools/run-tests.mjs sums up.
import type { ViteUserConfig } from 'vitest/config';

export function sharedTestConfig(overrides: { testTimeout?: number } = {}): ViteUserConfig {
  return {
    resolve: { conditions: ['@sfc/source'] },
    ssr: { resolve: { conditions: ['@sfc/source'] } },
    test: {
      include: ['src/**/*.test.ts', 'src/**/*.test.tsx', 'test/**/*.test.ts'],
      testTimeout: overrides.testTimeout ?? 120_000,
      hookTimeout: 120_000,
      reporters: ['default', 'json'],
      outputFile: { json: '.test-results/vitest.json' },
      pool: 'forks',
    },
  };
}
