// The synthetic English of the embedded agreement model: its vocabulary, the sentence grammar
// that makes the training corpus, and the four agreement templates (simple, nounpp, within_rc,
// rc) in feature-circuits' prompt-pair format. Every word here is one token of the model's
// word-level tokenizer, so prefixes and answers have fixed token lengths by construction.

import type { Rng } from './rng.js';

export type GramNumber = 'singular' | 'plural';

/** A noun or a present-tense verb with its singular (3rd person) and plural forms. */
export interface Pair { readonly sg: string; readonly pl: string }

const pairs = (spec: string): Pair[] =>
  spec.trim().split(/\s+/).map((w) => {
    const [sg, pl] = w.split('/');
    return { sg: sg!, pl: pl ?? `${sg}s` };
  });

/** People: subjects, prepositional objects, relative-clause subjects, verb objects. */
export const NOUNS: readonly Pair[] = pairs(`
  baker singer painter lawyer nurse driver student sailor soldier writer
  actor artist banker builder captain chef clerk coach/coaches cousin dentist
  editor engineer friend gardener judge king queen knight miner neighbor
  poet prince/princes scientist tailor tourist visitor waiter child/children woman/women man/men`);

/** Things: only objects of verbs (never subjects), so the subject slot stays the agreement controller. */
export const THINGS: readonly Pair[] = pairs('book key letter car house song picture gift');

/** The answers of simple, nounpp and rc: auxiliaries right after the subject noun phrase. */
export const AUXILIARIES: readonly Pair[] = pairs('is/are was/were has/have does/do');

/** The answers of within_rc (the relative clause's verb) and the verbs of every transitive clause. */
export const TRANSITIVE: readonly Pair[] = pairs(`
  likes/like hates/hate admires/admire knows/know trusts/trust helps/help meets/meet fears/fear loves/love visits/visit`);

export const INTRANSITIVE: readonly Pair[] = pairs('sleeps/sleep smiles/smile laughs/laugh waits/wait works/work sings/sing runs/run swims/swim');

export const PREPOSITIONS: readonly string[] = ['near', 'behind', 'beside', 'with', 'from', 'by'];
/** Before a noun ("the old kings"); never inside template prefixes. */
export const ATTRIBUTIVE: readonly string[] = ['old', 'young', 'tall', 'famous'];
/** After is/was ("is happy"). */
export const PREDICATIVE: readonly string[] = ['happy', 'tired', 'busy', 'angry', 'ready', 'late', 'quiet', 'here', 'there'];
export const ADVERBS: readonly string[] = ['today', 'again', 'often', 'quietly', 'well'];
const FUNCTION_WORDS = ['The', 'the', 'that', 'a', 'two', 'very', 'not', '.'];

const form = (p: Pair, n: GramNumber): string => (n === 'singular' ? p.sg : p.pl);
export const flip = (n: GramNumber): GramNumber => (n === 'singular' ? 'plural' : 'singular');

/** Every word the grammar can produce, in a fixed order (the tokenizer's ids follow it). */
export function vocabulary(): string[] {
  const words: string[] = [...FUNCTION_WORDS];
  for (const group of [NOUNS, THINGS, AUXILIARIES, TRANSITIVE, INTRANSITIVE]) for (const p of group) words.push(p.sg, p.pl);
  words.push(...PREPOSITIONS, ...ATTRIBUTIVE, ...PREDICATIVE, ...ADVERBS);
  const seen = new Set<string>();
  for (const w of words) {
    if (seen.has(w)) throw new Error(`grammar: word '${w}' appears twice in the vocabulary`);
    seen.add(w);
  }
  return words;
}

// ------------------------------------------------------------------ templates

export type TemplateName = 'simple' | 'nounpp' | 'within_rc' | 'rc';
export const TEMPLATES: readonly TemplateName[] = ['simple', 'nounpp', 'within_rc', 'rc'];

/** One line of a feature-circuits dataset. */
export interface Example {
  readonly clean_prefix: string;
  readonly patch_prefix: string;
  readonly clean_answer: string;
  readonly patch_answer: string;
  readonly case: string;
}

/** Which nouns (by index in NOUNS) an example is built from; the unit of the train/test split. */
export interface Slots { readonly n1: number; readonly n2?: number }

export interface TemplateItem { readonly slots: Slots; readonly example: Example }

const NUMBERS: readonly GramNumber[] = ['singular', 'plural'];

/**
 * Every example a template can make. Clean and patch differ only in the number of the noun
 * that controls the answer: the subject for simple, nounpp and rc; the relative clause's
 * subject for within_rc. `case` is the clean prefix's noun numbers, as in feature-circuits.
 */
export function enumerateTemplate(name: TemplateName): TemplateItem[] {
  const out: TemplateItem[] = [];
  const ex = (clean: string, patch: string, answer: Pair, n: GramNumber, kase: string): Example => ({
    clean_prefix: clean, patch_prefix: patch, clean_answer: ` ${form(answer, n)}`, patch_answer: ` ${form(answer, flip(n))}`, case: kase,
  });
  NOUNS.forEach((a, n1) => {
    if (name === 'simple') {
      for (const x of NUMBERS) for (const aux of AUXILIARIES) {
        out.push({ slots: { n1 }, example: ex(`The ${form(a, x)}`, `The ${form(a, flip(x))}`, aux, x, x) });
      }
      return;
    }
    NOUNS.forEach((b, n2) => {
      if (n1 === n2) return;
      for (const x of NUMBERS) for (const y of NUMBERS) {
        const kase = `${x}_${y}`;
        if (name === 'nounpp') {
          for (const p of PREPOSITIONS) for (const aux of AUXILIARIES) {
            const tail = ` ${p} the ${form(b, y)}`;
            out.push({ slots: { n1, n2 }, example: ex(`The ${form(a, x)}${tail}`, `The ${form(a, flip(x))}${tail}`, aux, x, kase) });
          }
        } else if (name === 'within_rc') {
          for (const v of TRANSITIVE) {
            const head = `The ${form(a, x)} that the `;
            out.push({ slots: { n1, n2 }, example: ex(`${head}${form(b, y)}`, `${head}${form(b, flip(y))}`, v, y, kase) });
          }
        } else {
          for (const v of TRANSITIVE) for (const aux of AUXILIARIES) {
            const tail = ` that the ${form(b, y)} ${form(v, y)}`;
            out.push({ slots: { n1, n2 }, example: ex(`The ${form(a, x)}${tail}`, `The ${form(a, flip(x))}${tail}`, aux, x, kase) });
          }
        }
      }
    });
  });
  return out;
}

/**
 * The held-out noun combinations: a fraction of the subject nouns (for simple) and of the
 * ordered (subject, second noun) pairs (for nounpp, within_rc and rc). Test examples use only
 * held-out combinations, train examples never do, and the training corpus never puts a
 * held-out pair in a prepositional phrase or relative clause, so every test prefix of those
 * three templates is new to the model.
 */
export interface HeldOut {
  readonly nouns: ReadonlySet<number>;
  readonly pairs: ReadonlySet<string>;
}

export const pairKey = (n1: number, n2: number): string => `${n1}:${n2}`;

export function chooseHeldOut(rng: Rng, nounFraction: number, pairFraction: number): HeldOut {
  const idx = rng.shuffle(NOUNS.map((_, i) => i));
  const nouns = new Set(idx.slice(0, Math.round(nounFraction * NOUNS.length)));
  const all: string[] = [];
  NOUNS.forEach((_, a) => NOUNS.forEach((_, b) => { if (a !== b) all.push(pairKey(a, b)); }));
  rng.shuffle(all);
  const pairsOut = new Set(all.slice(0, Math.round(pairFraction * all.length)));
  return { nouns, pairs: pairsOut };
}

export function isHeldOut(t: TemplateName, s: Slots, h: HeldOut): boolean {
  return t === 'simple' ? h.nouns.has(s.n1) : h.pairs.has(pairKey(s.n1, s.n2!));
}

// ------------------------------------------------------------------ corpus sentences

/**
 * One sentence of the training corpus:
 *   S    → "The" [ADJ] N₁ [MOD] VP(N₁) "."
 *   MOD  → PREP the [ADJ] N₂  |  that the [ADJ] N₂ TV(N₂)  |  that TV(N₁) OBJ
 *   VP   → is/was [very] PRED | is/was PREP the N | has OBJ | does not (TV OBJ | IV) | TV OBJ [ADV] | IV [ADV]
 * Agreement holds everywhere (main verb with N₁, relative-clause verb with its own subject);
 * `avoid` rejects (N₁, N₂) pairs in prepositional phrases and object relative clauses.
 */
export function sentence(rng: Rng, avoid: (n1: number, n2: number) => boolean): string {
  const w: string[] = ['The'];
  const n1 = rng.int(NOUNS.length);
  const x: GramNumber = rng.chance(0.5) ? 'singular' : 'plural';
  if (rng.chance(0.1)) w.push(rng.pick(ATTRIBUTIVE));
  w.push(form(NOUNS[n1]!, x));
  const second = (): [string, GramNumber] => {
    let n2: number;
    do n2 = rng.int(NOUNS.length); while (n2 === n1 || avoid(n1, n2));
    const y: GramNumber = rng.chance(0.5) ? 'singular' : 'plural';
    return [form(NOUNS[n2]!, y), y];
  };
  const mod = rng.float();
  if (mod < 0.25) {
    w.push(rng.pick(PREPOSITIONS), 'the');
    if (rng.chance(0.1)) w.push(rng.pick(ATTRIBUTIVE));
    w.push(second()[0]);
  } else if (mod < 0.6) {
    w.push('that', 'the');
    if (rng.chance(0.1)) w.push(rng.pick(ATTRIBUTIVE));
    const [noun, y] = second();
    w.push(noun, form(rng.pick(TRANSITIVE), y));
  } else if (mod < 0.75) {
    w.push('that', form(rng.pick(TRANSITIVE), x), ...object(rng));
  }
  w.push(...verbPhrase(rng, x), '.');
  return w.join(' ').replace(/ \.$/, '.');
}

function object(rng: Rng): string[] {
  const r = rng.float();
  const n: GramNumber = rng.chance(0.5) ? 'singular' : 'plural';
  if (r < 0.5) {
    const adj = rng.chance(0.1) ? [rng.pick(ATTRIBUTIVE)] : [];
    return ['the', ...adj, form(rng.pick(NOUNS), n)];
  }
  const thing = rng.pick(THINGS);
  if (r < 0.7) return ['a', thing.sg];
  if (r < 0.8) return ['two', thing.pl];
  return ['the', form(thing, n)];
}

function verbPhrase(rng: Rng, x: GramNumber): string[] {
  const r = rng.float();
  const aux = (i: number) => form(AUXILIARIES[i]!, x);
  if (r < 0.3) {
    const be = aux(rng.pick([0, 1]));
    if (rng.chance(0.2)) return [be, rng.pick(PREPOSITIONS), 'the', form(rng.pick(NOUNS), rng.chance(0.5) ? 'singular' : 'plural')];
    const pred = rng.pick(PREDICATIVE);
    return pred === 'here' || pred === 'there' || !rng.chance(0.2) ? [be, pred] : [be, 'very', pred];
  }
  if (r < 0.45) return [aux(2), ...object(rng)];
  if (r < 0.6) return [aux(3), 'not', ...(rng.chance(0.5) ? [rng.pick(TRANSITIVE).pl, ...object(rng)] : [rng.pick(INTRANSITIVE).pl])];
  const adv = rng.chance(0.3) ? [rng.pick(ADVERBS)] : [];
  if (r < 0.82) return [form(rng.pick(TRANSITIVE), x), ...object(rng), ...adv];
  return [form(rng.pick(INTRANSITIVE), x), ...adv];
}
