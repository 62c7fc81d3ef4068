// Where `sfc dict top` keeps each SAE's top-activating contexts and how the TUI finds them: one
// sfc.top-contexts/v1 file per SAE, named by the SAE's content hash, in the `topContexts` folder
// (config key / --top-contexts; default `.sfc-cache/top-contexts` under the user cache folder).

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseTopContexts, topContextsFileName, type TopContextsFile } from '@sfc/core';
import type { EffectiveConfig } from './config/config.js';

/** The folder of top-context files: the config key, else `.sfc-cache/top-contexts` under $XDG_CACHE_HOME or ~/.cache. */
export function topContextsDir(config: EffectiveConfig, env: Readonly<Record<string, string | undefined>>, cwd: string): string {
  const set = config.get<string>('topContexts');
  if (set !== undefined) return set;
  const base = env.XDG_CACHE_HOME || (env.HOME ? join(env.HOME, '.cache') : homedir() ? join(homedir(), '.cache') : cwd);
  return join(base, '.sfc-cache', 'top-contexts');
}

/** The file of the SAE with this content hash, if `sfc dict top` wrote one (a file for another SAE is ignored). */
export async function readTopContextsFor(dir: string, saeHash: string): Promise<TopContextsFile | undefined> {
  const path = join(dir, topContextsFileName(saeHash));
  if (!existsSync(path)) return undefined;
  const file = parseTopContexts(await readFile(path, 'utf8'), path);
  return file.sae.hash === saeHash ? file : undefined;
}
