// Where the embedded artifacts live in the repo, and the dataset file names.

import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TemplateName } from './grammar.js';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const EMBEDDED_DIR = join(REPO_ROOT, 'embedded', 'agreement');
export const DATA_DIR = join(EMBEDDED_DIR, 'data');
export const MODEL_DIR = join(EMBEDDED_DIR, 'model');

export const datasetFile = (t: TemplateName, split: 'train' | 'test'): string => `${t}_${split}.jsonl`;
