// Paths to the repo's committed fixtures, for cross-package tests.
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const FIXTURES = join(REPO_ROOT, 'fixtures');
export const SMALL_A = join(FIXTURES, 'small-a');
/** fixtures/models/<name>/: the tools/refgen test models (and their edges/ references). */
export const MODELS = join(FIXTURES, 'models');
