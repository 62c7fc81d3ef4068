// `sfc.effects/v1`: the full node effects of an attribution run, as plain JSON that other tools
// read. Per submodule a dense `features` array (length F, or [positions][F] for aggregation none)
// and `error` (a number, or one per position), plus the metric means and run metadata.

import type { AttributionResult, NodeEffects } from '../algorithms/attribution.js';
import { parseSubmoduleName } from '../submodule.js';
import { compactNumber, JsonReader, type Json } from './json-checks.js';
import { stringifyFinite } from './finite-json.js';

export const EFFECTS_SCHEMA = 'sfc.effects/v1';

export interface SubmoduleEffectsJson {
  readonly features: number[] | number[][];
  readonly error: number | number[];
}

/** Identity of what was run on (model folder, dictionaries, data); free-form objects. */
export interface RunMetadata {
  readonly model?: Json;
  readonly dictionaries?: Json;
  readonly data?: Json;
}

export interface EffectsFile extends RunMetadata {
  readonly schema: typeof EFFECTS_SCHEMA;
  readonly method: 'attrib' | 'ig' | 'exact';
  readonly steps: number | null;
  readonly aggregation: 'sum' | 'none';
  readonly numExamples: number;
  readonly seqLen: number | null;
  readonly metric: string;
  readonly submodules: string[];
  readonly dSae: Record<string, number>;
  readonly effects: Record<string, SubmoduleEffectsJson>;
  readonly metricClean: number;
  readonly metricPatch: number | null;
  readonly totalEffect: number | null;
}

function rowsOf(values: Float64Array, positions: number, width: number): number[][] {
  return Array.from({ length: positions }, (_, p) => Array.from(values.subarray(p * width, (p + 1) * width), compactNumber));
}

export function effectsToFile(result: AttributionResult, meta: RunMetadata = {}): EffectsFile {
  const effects: Record<string, SubmoduleEffectsJson> = {};
  const dSae: Record<string, number> = {};
  for (const name of result.submodules) {
    const e = result.effects.get(name)!;
    dSae[name] = e.dSae;
    effects[name] = e.positions === null
      ? { features: Array.from(e.features, compactNumber), error: compactNumber(e.error[0]!) }
      : { features: rowsOf(e.features, e.positions, e.dSae), error: Array.from(e.error, compactNumber) };
  }
  return {
    schema: EFFECTS_SCHEMA, method: result.method, steps: result.steps, aggregation: result.aggregation,
    numExamples: result.numExamples, seqLen: result.seqLen, metric: result.metric,
    submodules: [...result.submodules], dSae, effects,
    metricClean: compactNumber(result.metricClean),
    metricPatch: result.metricPatch === null ? null : compactNumber(result.metricPatch),
    totalEffect: result.totalEffect === null ? null : compactNumber(result.totalEffect),
    ...meta,
  };
}

export function serializeEffects(file: EffectsFile): string {
  return `${stringifyFinite(file, 'effects')}\n`;
}

const HINT = 'an sfc.effects/v1 file is written by `sfc attribute --out FILE`';

export function parseEffects(text: string, source = 'effects file'): EffectsFile {
  const r: JsonReader = new JsonReader(source, HINT);
  const o = r.parse(text);
  if (o.schema !== EFFECTS_SCHEMA) r.fail('schema', o.schema === undefined ? `is missing: not an ${EFFECTS_SCHEMA} file` : `must be "${EFFECTS_SCHEMA}", got ${JSON.stringify(o.schema)}`);
  const method = r.oneOf(o.method, 'method', ['attrib', 'ig', 'exact'] as const);
  const aggregation = r.oneOf(o.aggregation, 'aggregation', ['sum', 'none'] as const);
  const seqLen = r.intOrNull(o.seqLen ?? null, 'seqLen', 1);
  if (aggregation === 'none' && seqLen === null) r.fail('seqLen', 'is required for aggregation none');
  const submodules = r.array(o.submodules, 'submodules').map((s, i) => {
    const name = r.string(s, `submodules[${i}]`);
    if (!parseSubmoduleName(name)) r.fail(`submodules[${i}]`, `is not a submodule name: ${JSON.stringify(name)}`);
    return name;
  });
  const dSaeIn = r.object(o.dSae, 'dSae');
  const effIn = r.object(o.effects, 'effects');
  const dSae: Record<string, number> = {};
  const effects: Record<string, SubmoduleEffectsJson> = {};
  for (const sub of submodules) {
    const F = r.int(dSaeIn[sub], `dSae.${sub}`, 1);
    dSae[sub] = F;
    const e = r.object(effIn[sub], `effects.${sub}`);
    const vec = (v: unknown, path: string): number[] => {
      const a = r.array(v, path);
      if (a.length !== F) r.fail(path, `must have ${F} entries (dSae), has ${a.length}`);
      return a.map((x, i) => r.number(x, `${path}[${i}]`));
    };
    if (aggregation === 'sum') {
      effects[sub] = { features: vec(e.features, `effects.${sub}.features`), error: r.number(e.error, `effects.${sub}.error`) };
    } else {
      const rows = r.array(e.features, `effects.${sub}.features`);
      if (rows.length !== seqLen) r.fail(`effects.${sub}.features`, `must have ${seqLen} rows (seqLen), has ${rows.length}`);
      const err = r.array(e.error, `effects.${sub}.error`);
      if (err.length !== seqLen) r.fail(`effects.${sub}.error`, `must have ${seqLen} entries (seqLen), has ${err.length}`);
      effects[sub] = {
        features: rows.map((row, p) => vec(row, `effects.${sub}.features[${p}]`)),
        error: err.map((x, p) => r.number(x, `effects.${sub}.error[${p}]`)),
      };
    }
  }
  return {
    schema: EFFECTS_SCHEMA, method,
    steps: r.intOrNull(o.steps ?? null, 'steps', 1),
    aggregation,
    numExamples: r.int(o.numExamples, 'numExamples', 1),
    seqLen,
    metric: o.metric === undefined ? '' : r.string(o.metric, 'metric'),
    submodules, dSae, effects,
    metricClean: r.number(o.metricClean, 'metricClean'),
    metricPatch: r.numberOrNull(o.metricPatch ?? null, 'metricPatch'),
    totalEffect: r.numberOrNull(o.totalEffect ?? null, 'totalEffect'),
    ...metadata(r, o),
  };
}

export function metadata(r: JsonReader, o: Json): RunMetadata {
  const model = r.optionalObject(o.model, 'model');
  const dictionaries = r.optionalObject(o.dictionaries, 'dictionaries');
  const data = r.optionalObject(o.data, 'data');
  return { ...(model ? { model } : {}), ...(dictionaries ? { dictionaries } : {}), ...(data ? { data } : {}) };
}

/** Node effects per submodule from an effects file (for evaluation and pruning). */
export function effectsFromFile(file: EffectsFile): Map<string, NodeEffects> {
  const out = new Map<string, NodeEffects>();
  for (const sub of file.submodules) {
    const F = file.dSae[sub]!;
    const e = file.effects[sub]!;
    if (file.aggregation === 'sum') {
      out.set(sub, { submodule: sub, dSae: F, positions: null, features: Float64Array.from(e.features as number[]), error: Float64Array.of(e.error as number) });
    } else {
      out.set(sub, { submodule: sub, dSae: F, positions: file.seqLen, features: Float64Array.from((e.features as number[][]).flat()), error: Float64Array.from(e.error as number[]) });
    }
  }
  return out;
}
