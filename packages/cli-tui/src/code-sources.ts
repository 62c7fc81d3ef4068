// Which files sfc would load code from for the effective config: the backend modules and the
// dictionary plugin packages, resolved (not imported) the way backends.ts and dictionaries.ts
// load them. `sfc config print` lists them and `--verbose` prints them, so a user can see that
// no code comes from an unexpected place (docs/plugins.md, "Where plugins are loaded from").

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { EffectiveConfig } from './config/config.js';
import { BUILTIN_BACKENDS } from './config/schema.js';
import { isModulePath } from './config/validate.js';

export interface CodeSource {
  readonly kind: 'backend' | 'dictionary plugin';
  readonly name: string;
  /** The module file, or undefined when it cannot be resolved (loading it would fail). */
  readonly file: string | undefined;
}

const BUILTIN_PACKAGE: Record<string, string> = { onnx: '@sfc/backend-onnx', '@sfc/dictionaries': '@sfc/dictionaries' };
for (const b of BUILTIN_BACKENDS) if (b.startsWith('tfjs')) BUILTIN_PACKAGE[b] = '@sfc/backend-tfjs';

function resolveFrom(base: string, id: string): string | undefined {
  try { return createRequire(join(base, 'noop.js')).resolve(id); } catch { return undefined; }
}

const SFC_DIR = dirname(new URL(import.meta.url).pathname);

export function codeSources(config: EffectiveConfig, cwd: string): CodeSource[] {
  const backend = config.get<string | string[]>('backend') ?? [];
  const out: CodeSource[] = (typeof backend === 'string' ? [backend] : backend).map((id) => {
    const pkg = BUILTIN_PACKAGE[id];
    const file = isModulePath(id) ? id : resolveFrom(SFC_DIR, pkg ?? id) ?? (pkg ? undefined : resolveFrom(cwd, id));
    return { kind: 'backend', name: id, file };
  });
  const pluginBase = config.file ? dirname(config.file) : cwd;
  for (const name of config.get<string[]>('dictionaries.plugins') ?? []) {
    const pkg = BUILTIN_PACKAGE[name];
    out.push({ kind: 'dictionary plugin', name, file: pkg ? resolveFrom(SFC_DIR, pkg) : resolveFrom(pluginBase, name) });
  }
  return out;
}

export function formatCodeSources(list: readonly CodeSource[]): string {
  return list.map((c) => `${c.kind} ${c.name}: ${c.file ?? '(not installed)'}`).join('\n');
}
