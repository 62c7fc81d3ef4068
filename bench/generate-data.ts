// What every workload generator shares: the contrastive pairs and their words, random SAE decoders.

/** Pairs written to data.jsonl; a run uses the first `--examples` of them. */
export const PAIRS = 40;

const ADJ = ['old', 'young', 'tall', 'quiet', 'famous', 'busy', 'clever', 'kind', 'brave', 'shy'];
const NOUNS: readonly (readonly [string, string])[] = [
  ['author', 'authors'], ['guard', 'guards'], ['doctor', 'doctors'], ['teacher', 'teachers'], ['farmer', 'farmers'],
  ['senator', 'senators'], ['pilot', 'pilots'], ['manager', 'managers'], ['dancer', 'dancers'], ['lawyer', 'lawyers'],
];
const VERBS = ['like', 'see', 'know', 'admire', 'hate', 'love', 'trust', 'meet'];
export const WORDS = ['The', 'the', 'that', 'is', 'are', ...ADJ, ...NOUNS.flat(), ...VERBS];

/** "The old author that the busy pilots like" → is / are: 8 tokens, subject number flipped in the patch prompt. */
export function pairs(n: number): Record<string, string>[] {
  return Array.from({ length: n }, (_, i) => {
    const [sing, plur] = NOUNS[i % NOUNS.length]!;
    const rest = `that the ${ADJ[(i + 3) % ADJ.length]} ${NOUNS[(i * 3 + 5) % NOUNS.length]![1]} ${VERBS[i % VERBS.length]}`;
    const adj = ADJ[Math.floor(i / NOUNS.length + i) % ADJ.length];
    return { clean_prefix: `The ${adj} ${sing} ${rest}`, patch_prefix: `The ${adj} ${plur} ${rest}`, clean_answer: ' is', patch_answer: ' are', case: 'bench' };
  });
}


/** [rows, d] random directions: entries from `draw`, each row scaled to unit norm (SAE decoder rows). */
export function unitRows(rows: number, d: number, draw: () => number): Float32Array {
  const w = new Float32Array(rows * d);
  for (let i = 0; i < w.length; i++) w[i] = draw();
  for (let r = 0; r < rows; r++) {
    const row = w.subarray(r * d, (r + 1) * d);
    let n = 0;
    for (const v of row) n += v * v;
    const k = 1 / Math.sqrt(n);
    for (let i = 0; i < d; i++) row[i]! *= k;
  }
  return w;
}
