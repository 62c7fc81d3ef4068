// Writes the embedded agreement datasets (feature-circuits JSON lines, disjoint train/test)
// and the language-model training corpus, from a seed; `--check` re-verifies written files.
//
//   npx tsx tools/embedded/make-data.ts [--seed 1] [--out embedded/agreement/data] [--check]

import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import {
  chooseHeldOut, enumerateTemplate, isHeldOut, pairKey, sentence, TEMPLATES, vocabulary,
  type Example,
} from './grammar.js';
import { parseArgs, readJsonLines, sha256, writeAtomic, writeJson } from './io.js';
import { DATA_DIR, datasetFile } from './paths.js';
import { Rng } from './rng.js';

const args = parseArgs(process.argv.slice(2), {
  seed: 1, out: DATA_DIR, 'train-size': 1024, 'test-size': 256,
  'corpus-size': 48000, 'valid-size': 2000, 'held-out-nouns': 0.25, 'held-out-pairs': 0.2, check: false,
});
const out = resolve(String(args.out));

function generate(): void {
  const rng = new Rng(Number(args.seed));
  const held = chooseHeldOut(rng.fork(), Number(args['held-out-nouns']), Number(args['held-out-pairs']));
  const counts: Record<string, { train: number; test: number; trainPool: number; testPool: number }> = {};
  for (const t of TEMPLATES) {
    const pool = enumerateTemplate(t);
    const test = pool.filter((it) => isHeldOut(t, it.slots, held));
    const train = pool.filter((it) => !isHeldOut(t, it.slots, held));
    const r = rng.fork();
    const pickN = (xs: typeof pool, n: number) => r.shuffle([...xs]).slice(0, n).map((it) => it.example);
    const tr = pickN(train, Number(args['train-size']));
    const te = pickN(test, Number(args['test-size']));
    writeAtomic(join(out, datasetFile(t, 'train')), tr.map((e) => JSON.stringify(e)).join('\n') + '\n');
    writeAtomic(join(out, datasetFile(t, 'test')), te.map((e) => JSON.stringify(e)).join('\n') + '\n');
    counts[t] = { train: tr.length, test: te.length, trainPool: train.length, testPool: test.length };
  }
  const avoid = (a: number, b: number) => held.pairs.has(pairKey(a, b));
  const corpusRng = rng.fork();
  const lines = (n: number) => Array.from({ length: n }, () => sentence(corpusRng, avoid)).join('\n') + '\n';
  writeAtomic(join(out, 'corpus.txt'), lines(Number(args['corpus-size'])));
  writeAtomic(join(out, 'corpus-valid.txt'), lines(Number(args['valid-size'])));
  const files = [...TEMPLATES.flatMap((t) => [datasetFile(t, 'train'), datasetFile(t, 'test')]), 'corpus.txt', 'corpus-valid.txt'];
  writeJson(join(out, 'manifest.json'), {
    schema: 'sfc.embedded-data/v1',
    generator: 'tools/embedded/make-data.ts',
    seed: Number(args.seed),
    options: { trainSize: args['train-size'], testSize: args['test-size'], corpusSize: args['corpus-size'], validSize: args['valid-size'],
      heldOutNouns: args['held-out-nouns'], heldOutPairs: args['held-out-pairs'] },
    split: 'test examples use held-out subject nouns (simple) or held-out ordered (subject, second noun) pairs (nounpp, within_rc, rc); '
      + 'train examples never do, and the corpus never puts a held-out pair in a prepositional phrase or relative clause',
    heldOutNouns: [...held.nouns].sort((a, b) => a - b),
    heldOutPairCount: held.pairs.size,
    counts,
    vocabularySize: vocabulary().length,
    sha256: Object.fromEntries(files.map((f) => [f, sha256(join(out, f))])),
  });
}

/** Every property the datasets promise, checked on the files as written. Returns the failures. */
function check(): string[] {
  const bad: string[] = [];
  const vocab = new Set(vocabulary());
  const words = (s: string) => s.trim().split(/\s+|(?=\.)/).filter(Boolean);
  const train = new Set<string>();
  const test = new Map<string, string>();
  const rows: Record<string, Example[]> = {};
  for (const t of TEMPLATES) for (const split of ['train', 'test'] as const) {
    const path = join(out, datasetFile(t, split));
    if (!existsSync(path)) { bad.push(`missing ${path}`); continue; }
    const exs = readJsonLines<Example>(path);
    rows[`${t}_${split}`] = exs;
    const lengths = new Set<number>();
    const seen = new Set<string>();
    exs.forEach((e, i) => {
      const at = `${datasetFile(t, split)}:${i + 1}`;
      const c = words(e.clean_prefix), p = words(e.patch_prefix);
      if (c.length !== p.length) bad.push(`${at}: clean and patch prefixes have different lengths`);
      lengths.add(c.length);
      for (const w of [...c, ...p]) if (!vocab.has(w)) bad.push(`${at}: '${w}' is not in the vocabulary`);
      for (const a of [e.clean_answer, e.patch_answer]) {
        if (!/^ \S+$/.test(a) || !vocab.has(a.slice(1))) bad.push(`${at}: answer ${JSON.stringify(a)} is not one vocabulary word with a leading space`);
      }
      if (e.clean_answer === e.patch_answer || e.clean_prefix === e.patch_prefix) bad.push(`${at}: clean and patch do not differ`);
      if (c.filter((w, k) => w !== p[k]).length !== 1) bad.push(`${at}: clean and patch differ in more than one word`);
      const key = `${e.clean_prefix}|${e.clean_answer}`;
      if (seen.has(key)) bad.push(`${at}: duplicate example`);
      seen.add(key);
      for (const pre of [e.clean_prefix, e.patch_prefix]) (split === 'train' ? train.add(pre) : test.set(pre, t));
    });
    if (lengths.size !== 1) bad.push(`${datasetFile(t, split)}: prefixes of ${lengths.size} different lengths`);
  }
  for (const [pre, t] of test) if (train.has(pre)) bad.push(`test prefix '${pre}' (${t}) also occurs in a train split`);
  // The corpus must not contain a test prefix of nounpp / within_rc / rc at the start of a sentence.
  const corpusTestHits: Record<string, number> = { simple: 0, nounpp: 0, within_rc: 0, rc: 0 };
  const byLength = new Map<number, Map<string, string>>();
  for (const [pre, t] of test) {
    const n = words(pre).length;
    if (!byLength.has(n)) byLength.set(n, new Map());
    byLength.get(n)!.set(pre, t);
  }
  for (const file of ['corpus.txt', 'corpus-valid.txt']) {
    const path = join(out, file);
    if (!existsSync(path)) { bad.push(`missing ${path}`); continue; }
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (!line) continue;
      const w = words(line);
      for (const x of w) if (!vocab.has(x)) { bad.push(`${file}: '${x}' is not in the vocabulary`); break; }
      for (const [n, m] of byLength) {
        const t = m.get(w.slice(0, n).join(' '));
        if (t) corpusTestHits[t]!++;
      }
    }
  }
  for (const t of ['nounpp', 'within_rc', 'rc']) if (corpusTestHits[t]) bad.push(`the corpus starts ${corpusTestHits[t]} sentences with a ${t} test prefix`);
  const summary = TEMPLATES.map((t) => `${t} ${rows[`${t}_train`]?.length ?? 0}/${rows[`${t}_test`]?.length ?? 0}`).join(', ');
  console.log(`checked ${relative(process.cwd(), out) || '.'}: train/test ${summary}; ${test.size} distinct test prefixes, none in train; `
    + `corpus sentences starting with a test prefix: simple ${corpusTestHits.simple} (unavoidable: every noun begins sentences), nounpp/within_rc/rc 0 required`);
  return bad;
}

if (!args.check) generate();
const problems = check();
if (problems.length) {
  console.error(`${problems.length} problem(s):\n${problems.slice(0, 20).join('\n')}`);
  process.exit(1);
}
