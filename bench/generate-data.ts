// The benchmark's contrastive pairs and their words (shared by every workload generator).

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

