// The plugin architecture as a test: plugins depend on @sfc/core only (as a peer), steering on
// core, the CLI on everything; core on no plugin. Also checked in source imports.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './paths.js';

const allowed: Record<string, string[]> = {
  '@sfc/core': [],
  '@sfc/backend-tfjs': ['@sfc/core'],
  '@sfc/backend-onnx': ['@sfc/core'],
  '@sfc/dictionaries': ['@sfc/core'],
  '@sfc/steering': ['@sfc/core'],
  '@sfc/cli': ['@sfc/core', '@sfc/backend-tfjs', '@sfc/backend-onnx', '@sfc/dictionaries', '@sfc/steering'],
};
const dirs: Record<string, string> = {
  '@sfc/core': 'core', '@sfc/backend-tfjs': 'backend-tfjs', '@sfc/backend-onnx': 'backend-onnx',
  '@sfc/dictionaries': 'dictionaries', '@sfc/steering': 'steering', '@sfc/cli': 'cli-tui',
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return sources(p);
    return /\.tsx?$/.test(f) && !/\.test\.tsx?$/.test(f) ? [p] : [];
  });
}

describe('package boundaries', () => {
  for (const [name, ok] of Object.entries(allowed)) {
    it(`${name} depends only on ${ok.join(', ') || 'no sfc package'}`, () => {
      const dir = join(REPO_ROOT, 'packages', dirs[name]!);
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      expect(pkg.name).toBe(name);
      const runtime = Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies }).filter((d) => d.startsWith('@sfc/'));
      expect(runtime.filter((d) => !ok.includes(d))).toEqual([]);
      if (name !== '@sfc/core' && name !== '@sfc/cli') {
        expect(Object.keys(pkg.dependencies ?? {}).filter((d) => d.startsWith('@sfc/'))).toEqual([]); // peers, not deps
      }
      const imported = new Set<string>();
      for (const f of sources(join(dir, 'src'))) {
        for (const m of readFileSync(f, 'utf8').matchAll(/from\s+'(@sfc\/[a-z-]+)(\/[^']*)?'/g)) {
          imported.add(m[1]!);
          if (m[2] && m[2] !== '/testing') throw new Error(`${f}: deep import ${m[1]}${m[2]}`);
        }
      }
      expect([...imported].filter((d) => d !== name && !ok.includes(d))).toEqual([]);
    });
  }
});
