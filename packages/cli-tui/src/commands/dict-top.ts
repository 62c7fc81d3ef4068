// `sfc dict top`: each feature's top-activating contexts over a local text corpus (core's
// topActivations), for the features of a circuit, a list, or every feature of some submodules,
// written as one sfc.top-contexts/v1 file per SAE named by the SAE's content hash (merged with
// the features an earlier run wrote for the same SAE, corpus and settings). The TUI shows them
// for the selected node.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  contentHash, dictionaryFolder, InputError, mergeTopContexts, modelContentHash, modelDisplayName, NotFoundError, parseCircuit, parseTopContexts, sanitizeMessage,
  serializeTopContexts, topActivations, topContextsFileName, topContextsFiles, tryParseNodeId, type Model, type TopContextsFile,
} from '@sfc/core';
import { loadModelDictionaries, selectedSubmodules } from '../dictionaries.js';
import { UsageError } from '../error-format.js';
import type { OptionId } from '../options.js';
import { Session } from '../session.js';
import { topContextsDir } from '../top-contexts.js';
import { writeFileAtomic } from '../write-atomic.js';
import type { GlobalArgs, SfcCommand } from './command.js';

const OPTIONS: OptionId[] = ['model', 'dictionaries', 'dictRun', 'submodules', 'backend', 'topContexts', 'json'];
const SHOWN = 3;

type Wanted = Map<string, Int32Array | 'all'>;

function intFlag(argv: GlobalArgs, key: string, fallback: number, min: number): number {
  const v = argv[key] ?? fallback;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${key} must be an integer ≥ ${min}, got ${String(v)}`);
  return n;
}

/** Features by submodule from a list of ids (`resid_2/33`, errors and positions refused). */
function fromIds(ids: readonly string[], what: string): Wanted {
  const by = new Map<string, Set<number>>();
  for (const id of ids) {
    const ref = tryParseNodeId(id.replace(/@\d+$/, ''));
    if (!ref || ref.kind !== 'feature') throw new UsageError(`${what}: ${JSON.stringify(id)} is not a feature id`, 'features are like resid_2/33 (error nodes have no contexts)');
    by.set(ref.submodule, (by.get(ref.submodule) ?? new Set()).add(ref.index));
  }
  return new Map([...by].map(([s, f]) => [s, Int32Array.from([...f].sort((a, b) => a - b))]));
}

async function wantedFeatures(argv: GlobalArgs, s: Session, model: Model): Promise<Wanted> {
  const cwd = s.io.cwd;
  const given = ['circuit', 'features', 'all'].filter((k) => argv[k] !== undefined && argv[k] !== false);
  if (given.length !== 1) throw new UsageError('give exactly one of --circuit FILE, --features LIST or --all', 'e.g. --circuit circuit.json');
  if (argv.circuit !== undefined) {
    const path = resolve(cwd, String(argv.circuit));
    if (!existsSync(path)) throw new NotFoundError(`circuit file ${path} does not exist`, 'write one with `sfc discover --out circuit.json`');
    const c = parseCircuit(await readFile(path, 'utf8'), path);
    const ids = c.nodes.filter((n) => n.index !== null && n.index !== c.dSae[n.submodule]).map((n) => n.id);
    if (!ids.length) throw new InputError(`${path} has no feature nodes`, 'error nodes have no top contexts');
    return fromIds(ids, String(argv.circuit));
  }
  if (argv.features !== undefined) return fromIds(String(argv.features).split(',').map((x) => x.trim()).filter(Boolean), '--features');
  const subs = selectedSubmodules(s, model) ?? model.submodules.map((x) => x.name);
  return new Map(subs.map((n) => [n, 'all' as const]));
}

/** Corpus token ids: line by line (tokenizers are fastest on short texts), newlines kept. */
function tokenizeCorpus(model: Model, text: string): Int32Array {
  const out: number[] = [];
  for (const line of text.split(/(?<=\n)/)) if (line.length) for (const id of model.tokenizer.encode(line)) out.push(id);
  return Int32Array.from(out);
}

function formatSummary(files: readonly { file: TopContextsFile; path: string; added: number }[], tokens: number, seconds: number): string {
  const lines = [`top contexts of ${files.reduce((n, f) => n + f.added, 0)} features over ${tokens} tokens in ${seconds.toFixed(1)} s:`];
  for (const { file, path, added } of files) {
    lines.push(`  ${file.submodule}: ${added} features → ${path}`);
    for (const [f, ctxs] of Object.entries(file.features).slice(0, SHOWN)) {
      const c = ctxs[0];
      lines.push(c ? `    ${file.submodule}/${f}  ${c.value.toPrecision(3)}  ${c.tokens.map((t, i) => (i === c.at ? `⟦${t}⟧` : t)).join('').replace(/\s+/g, ' ')}` : `    ${file.submodule}/${f}  (never active)`);
    }
  }
  // Contexts are corpus text: no terminal escapes, no megabyte lines (as `sfc dict info`).
  return `${lines.map((l) => sanitizeMessage(l, 1000)).join('\n')}\n`;
}

async function run(argv: GlobalArgs, s: Session): Promise<void> {
  const k = intFlag(argv, 'k', 10, 1);
  const seqLen = intFlag(argv, 'seq-len', 64, 1);
  const batchSize = intFlag(argv, 'batch-size', 32, 1);
  const before = intFlag(argv, 'before', 12, 0);
  const after = intFlag(argv, 'after', 4, 0);
  if (argv.corpus === undefined) throw new UsageError('missing --corpus FILE', 'a plain-text file to search (e.g. 1 MB of text like the model\'s training data)');
  const corpusPath = resolve(s.io.cwd, String(argv.corpus));
  if (!existsSync(corpusPath)) throw new NotFoundError(`corpus file ${corpusPath} does not exist`, 'give a plain-text file with --corpus');
  const text = await readFile(corpusPath, 'utf8');
  const outDir = topContextsDir(s.config, s.io.env, s.io.cwd);
  const model = await s.model();
  const wanted = await wantedFeatures(argv, s, model);
  const dictionaries = await loadModelDictionaries(s, model, { only: [...wanted.keys()] });
  try {
    const t0 = performance.now();
    const tokens = tokenizeCorpus(model, text);
    if (tokens.length > 50_000 && !model.backend.name.startsWith('onnx')) {
      s.warn(`${tokens.length} tokens on ${model.backend.name}: --backend onnx runs this about 3× faster at Pythia-70m scale (docs/performance.md)`);
    }
    s.status(`corpus: ${tokens.length} tokens from ${corpusPath} (${text.length} characters); ${[...wanted].map(([sub, f]) => `${sub}: ${f === 'all' ? 'all' : f.length}`).join(', ')} features`);
    const progress = s.progress();
    let result;
    try {
      result = await topActivations(model, dictionaries, tokens, { features: wanted, k, seqLen, batchSize, onProgress: progress.onProgress });
    } finally {
      progress.finish();
    }
    const modelMeta = { path: model.dir, name: await modelDisplayName(model.dir), hash: await modelContentHash(model.dir) };
    const corpus = { path: corpusPath, hash: `sha256:${createHash('sha256').update(text).digest('hex')}`, tokens: tokens.length };
    const saes = new Map<string, { path: string; hash: string }>();
    for (const sub of wanted.keys()) {
      const dir = dictionaryFolder(dictionaries.get(sub)!);
      if (!dir) throw new InputError(`the SAE of ${sub} was not loaded from a folder, so its contexts cannot be tied to its content`, 'load SAEs from folders (--dictionaries DIR)');
      saes.set(sub, { path: dir, hash: await contentHash(dir) });
    }
    const files = topContextsFiles(result, tokens, (ids) => model.tokenizer.decode(ids), (sub) => ({ sae: saes.get(sub)!, model: modelMeta, corpus, k, before, after }));
    await mkdir(outDir, { recursive: true });
    const written: { file: TopContextsFile; path: string; added: number }[] = [];
    for (const f of files) {
      const path = join(outDir, topContextsFileName(f.sae.hash));
      const old = existsSync(path) ? parseTopContexts(await readFile(path, 'utf8'), path) : undefined;
      const merged = mergeTopContexts(old, f);
      await writeFileAtomic(path, serializeTopContexts(merged));
      written.push({ file: f, path, added: Object.keys(f.features).length });
    }
    const seconds = (performance.now() - t0) / 1000;
    s.io.stdout.write(argv.json
      ? `${JSON.stringify({ schema: 'sfc.dict-top/v1', tokens: tokens.length, seconds, files: written.map((w) => ({ submodule: w.file.submodule, path: w.path, features: w.added })) }, null, 2)}\n`
      : formatSummary(written, tokens.length, seconds));
  } finally {
    for (const d of dictionaries.values()) d.dispose();
  }
}

export const dictTopCommand: SfcCommand = {
  command: 'top',
  describe: 'Top-activating contexts of features over a text corpus (token windows, activating token marked, activation values), one file per SAE tied to its content hash; the TUI shows them for the selected node',
  options: OPTIONS,
  builder: (y) => y
    .option('corpus', { type: 'string', requiresArg: true, describe: 'Plain-text file to search' })
    .option('circuit', { type: 'string', requiresArg: true, describe: 'The feature nodes of this circuit (sfc.circuit/v1); its recorded model and SAEs are used' })
    .option('features', { type: 'string', requiresArg: true, describe: 'Feature ids, comma-separated (resid_2/33,attn_1/7)' })
    .option('all', { type: 'boolean', describe: 'Every feature of --submodules (default: every submodule)' })
    .option('k', { type: 'number', requiresArg: true, default: 10, describe: 'Contexts kept per feature' })
    .option('seq-len', { type: 'number', requiresArg: true, default: 64, describe: 'Tokens per row the corpus is cut into (the context the model sees)' })
    .option('batch-size', { type: 'number', requiresArg: true, default: 32, describe: 'Rows per forward' })
    .option('before', { type: 'number', requiresArg: true, default: 12, describe: 'Tokens shown before the activating token' })
    .option('after', { type: 'number', requiresArg: true, default: 4, describe: 'Tokens shown after it' }),
  examples: [
    ['$0 dict top --circuit circuit.json --corpus corpus.txt', 'Contexts of the circuit\'s features, with the circuit\'s own model and SAEs'],
    ['$0 dict top --features resid_2/33,attn_1/7 --corpus corpus.txt --model M --dictionaries D', 'Two features'],
    ['$0 dict top --all --submodules resid_2 --corpus corpus.txt --model M --dictionaries D', 'Every feature of one SAE'],
  ],
  run: async (argv, io) => {
    await Session.with(io, argv, OPTIONS, (s) => run(argv, s));
  },
};
