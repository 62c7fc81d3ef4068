// The sfc.config.json schema as data: every key, its type, default and description. The
// validator, `sfc config print`, the JSON Schema export and docs/config.md all read this table,
// so a key exists in exactly one place.

export type FieldType =
  | { readonly kind: 'string' }
  | { readonly kind: 'path' }
  | { readonly kind: 'enum'; readonly values: readonly string[] }
  | { readonly kind: 'integer'; readonly min?: number; readonly max?: number }
  | { readonly kind: 'number'; readonly min?: number; readonly max?: number }
  | { readonly kind: 'boolean' }
  /** A JSON array; on the command line a comma-separated list. */
  | { readonly kind: 'list'; readonly of: FieldType; readonly minItems?: number }
  /** One backend id or package name, or several in order of preference. */
  | { readonly kind: 'backend' }
  /** An npm package name (never a file path: code is loaded from installed packages only). */
  | { readonly kind: 'package' }
  /** An object whose keys are submodule names (`resid_3`, `embed`) and values of one type. */
  | { readonly kind: 'submoduleMap'; readonly of: FieldType };

export interface ConfigField {
  /** Dotted key path, e.g. `circuit.steps`. */
  readonly path: string;
  readonly type: FieldType;
  /** Value when neither the file nor a flag sets it; absent = unset. */
  readonly default?: unknown;
  readonly description: string;
}

export const BUILTIN_BACKENDS = ['tfjs', 'tfjs-cpu', 'tfjs-wasm', 'tfjs-tensorflow', 'onnx'] as const;
export const METHODS = ['attrib', 'ig', 'exact'] as const;
export const AGGREGATIONS = ['sum', 'none'] as const;
export const ABLATIONS = ['mean', 'zero', 'resample'] as const;
export const ERROR_HANDLING = ['default', 'keep', 'remove'] as const;
/** The execution providers @sfc/backend-onnx knows (its execution-providers.ts); kept here so
 * validating a config does not load onnxruntime. */
export const ONNX_PROVIDERS = ['cpu', 'cuda'] as const;

export const CONFIG_FIELDS: readonly ConfigField[] = [
  { path: 'backend', type: { kind: 'backend' }, default: 'tfjs',
    description: 'Backend: `tfjs` (best available TensorFlow.js flavour), `tfjs-cpu`, `tfjs-wasm`, `tfjs-tensorflow`, `onnx`, or the package name of a third-party backend. A list is tried in order.' },
  { path: 'onnx.threads', type: { kind: 'integer', min: 1 }, default: 2,
    description: 'onnx backend: threads per onnxruntime kernel (`intraOpNumThreads`). Applies to `onnx` only (docs/config.md, “onnx settings”).' },
  { path: 'onnx.providers', type: { kind: 'list', of: { kind: 'enum', values: ONNX_PROVIDERS }, minItems: 1 }, default: ['cpu'],
    description: 'onnx backend: execution providers in order of preference (`executionProviders`). `cpu` is added last when not listed; `cuda` needs onnxruntime\'s CUDA provider library (docs/backends.md), and when it is missing or does not start the backend uses `cpu` and `sfc info` says why.' },
  { path: 'onnx.cacheDir', type: { kind: 'path' },
    description: 'onnx backend: folder for compiled graphs (default: `.sfc-cache/onnx` under the user cache folder).' },
  { path: 'onnx.embeddingOnDisk', type: { kind: 'boolean' }, default: false,
    description: 'onnx backend: keep a 16-bit (BF16/F16) checkpoint\'s token embedding in an unlinked file under `onnx.cacheDir` instead of memory; runs read the rows they use, and a head over the whole vocabulary reads it in windows. Same results; saves the table (1.1 GiB for Gemma-2-2B) for ~0.25 CPU-s per whole-vocabulary head at that size (docs/gemma-2-2b.md).' },
  { path: 'model', type: { kind: 'path' },
    description: 'Hugging Face model folder (config.json, model.safetensors, tokenizer.json).' },
  { path: 'annotations', type: { kind: 'path' },
    description: 'Feature labels shown in `sfc tui`, `sfc plot` and `sfc steer`: feature-circuits JSON lines {"Name": "resid_5/3036", "Annotation": "..."} or a Neuronpedia explanation export (JSON array of {layer, index, description}).' },
  { path: 'topContexts', type: { kind: 'path' },
    description: 'Folder of the top-activating contexts `sfc dict top` writes (one file per SAE, named by its content hash) and the TUI shows (default: `.sfc-cache/top-contexts` under the user cache folder).' },
  { path: 'data', type: { kind: 'path' },
    description: 'Contrastive prompt pairs, JSON lines {clean_prefix, patch_prefix, clean_answer, patch_answer}.' },
  { path: 'dictionaries.folder', type: { kind: 'path' },
    description: 'Folder with one sub-folder of SAE files per submodule (`resid_3/` or feature-circuits names like `resid_out_layer3/`).' },
  { path: 'dictionaries.only', type: { kind: 'list', of: { kind: 'string' }, minItems: 1 },
    description: 'Load SAEs only for these submodules (default: every submodule): sfc names (`resid_3`), TransformerLens hooks (`blocks.3.hook_resid_post`) or `*` patterns (`resid_*`). Circuits then have nodes in these submodules only; a command that needs another (a circuit or feature outside them) is refused. Naming `embed` (not by a pattern) gives Gemma its optional embed submodule.' },
  { path: 'dictionaries.plugins', type: { kind: 'list', of: { kind: 'package' }, minItems: 1 }, default: ['@sfc/dictionaries'],
    description: 'Dictionary loader plugins, by package name (not a file path), tried in order.' },
  { path: 'dictionaries.runId', type: { kind: 'string' },
    description: 'Run-id sub-folder to use where a submodule folder holds several trained dictionaries (e.g. `10_32768`).' },
  { path: 'dictionaries.submodules', type: { kind: 'submoduleMap', of: { kind: 'path' } },
    description: 'Per-submodule SAE folders that override the folder layout, e.g. {"resid_3": "saes/res3"}.' },
  { path: 'circuit.method', type: { kind: 'enum', values: METHODS }, default: 'ig',
    description: 'Node-effect method of `sfc attribute`: `attrib` (one gradient), `ig` (integrated gradients), `exact` (one forward per feature). `sfc discover` always uses `ig`, as feature-circuits does.' },
  { path: 'circuit.steps', type: { kind: 'integer', min: 1 }, default: 10,
    description: 'Integrated-gradient steps (left Riemann sum).' },
  { path: 'circuit.aggregation', type: { kind: 'enum', values: AGGREGATIONS }, default: 'sum',
    description: '`sum`: effects summed over positions; `none`: one effect per position.' },
  { path: 'circuit.nodeThreshold', type: { kind: 'number', min: 0 }, default: 0.1,
    description: 'Nodes with |effect| above this are kept (and used as edge targets).' },
  { path: 'circuit.edgeThreshold', type: { kind: 'number', min: 0 }, default: 0.01,
    description: 'Edges with |weight| above this are kept; 0 keeps every nonzero edge.' },
  { path: 'circuit.batchSize', type: { kind: 'integer', min: 1 }, default: 32,
    description: 'Examples per batch.' },
  { path: 'circuit.numExamples', type: { kind: 'integer', min: 1 },
    description: 'Use at most this many usable examples (default: all).' },
  { path: 'circuit.seed', type: { kind: 'integer', min: 0 }, default: 12,
    description: 'Shuffle seed for the data file (same order as feature-circuits); also seeds resample ablation.' },
  { path: 'circuit.minLengthOnly', type: { kind: 'boolean' }, default: true,
    description: 'Pairs: keep only examples of the shortest token length, as feature-circuits does (false: every length, in right-padded batches). Single-prompt data always keeps every length.' },
  { path: 'evaluate.ablation', type: { kind: 'enum', values: ABLATIONS }, default: 'mean',
    description: 'Values for ablated nodes: per-position `mean` over the patch prompts, `zero`, or `resample`.' },
  { path: 'evaluate.handleErrors', type: { kind: 'enum', values: ERROR_HANDLING }, default: 'default',
    description: 'SAE error nodes: `default` (like features), `keep` (always live), `remove` (always ablated).' },
  { path: 'evaluate.thresholds', type: { kind: 'list', of: { kind: 'number', min: 0 }, minItems: 1 },
    default: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1],
    description: 'Node thresholds at which faithfulness and completeness are measured.' },
  { path: 'evaluate.numExamples', type: { kind: 'integer', min: 1 }, default: 40,
    description: 'Examples used by `sfc evaluate`.' },
  { path: 'evaluate.startLayer', type: { kind: 'integer', min: -1 },
    description: 'Ablate only from this layer on (default: every layer).' },
  { path: 'evaluate.includeEmbed', type: { kind: 'boolean' }, default: false,
    description: 'Ablate `embed` too. Off by default, as in feature-circuits\' ablation.py, which never ablates the embedding.' },
  { path: 'evaluate.batchSize', type: { kind: 'integer', min: 1 }, default: 20,
    description: 'Examples per batch during evaluation.' },
];

export function fieldAt(path: string): ConfigField | undefined {
  return CONFIG_FIELDS.find((f) => f.path === path);
}

/** Human description of a type, as used in error messages (`integer ≥ 1`). */
export function describeType(t: FieldType): string {
  switch (t.kind) {
    case 'string': return 'a string';
    case 'path': return 'a path';
    case 'enum': return `one of ${t.values.join(', ')}`;
    case 'integer': return `integer${bounds(t.min, t.max)}`;
    case 'number': return `number${bounds(t.min, t.max)}`;
    case 'boolean': return 'true or false';
    case 'list': return `a list of ${plural(t.of)}${t.minItems ? ` (at least ${t.minItems})` : ''}`;
    case 'backend': return `${BUILTIN_BACKENDS.join(', ')} or a package name (or a list of them)`;
    case 'package': return 'a package name';
    case 'submoduleMap': return `an object mapping submodule names to ${plural(t.of)}`;
  }
}

function plural(t: FieldType): string {
  switch (t.kind) {
    case 'integer': case 'number': return `${t.kind}s${bounds(t.min, t.max)}`;
    case 'enum': return `values from ${t.values.join(', ')}`;
    default: return `${describeType(t).replace(/^an? /, '')}s`;
  }
}

function bounds(min?: number, max?: number): string {
  if (min !== undefined && max !== undefined) return ` in [${min}, ${max}]`;
  if (min !== undefined) return ` ≥ ${min}`;
  if (max !== undefined) return ` ≤ ${max}`;
  return '';
}

/** The schema as JSON Schema (draft 2020-12), for editors (`sfc config schema`). */
export function toJsonSchema(): Record<string, unknown> {
  const root: Record<string, unknown> = { type: 'object', additionalProperties: false, properties: { $schema: { type: 'string' } } };
  for (const f of CONFIG_FIELDS) {
    const parts = f.path.split('.');
    let node = root;
    for (const p of parts.slice(0, -1)) {
      const props = node.properties as Record<string, Record<string, unknown>>;
      props[p] ??= { type: 'object', additionalProperties: false, properties: {} };
      node = props[p]!;
    }
    (node.properties as Record<string, unknown>)[parts[parts.length - 1]!] = {
      ...jsonType(f.type), description: f.description, ...(f.default !== undefined ? { default: f.default } : {}),
    };
  }
  return { $schema: 'https://json-schema.org/draft/2020-12/schema', title: 'sfc.config.json', ...root };
}

function jsonType(t: FieldType): Record<string, unknown> {
  switch (t.kind) {
    case 'string': case 'path': return { type: 'string' };
    case 'package': return { type: 'string', pattern: NPM_NAME.source };
    case 'enum': return { enum: [...t.values] };
    case 'integer': case 'number':
      return { type: t.kind, ...(t.min !== undefined ? { minimum: t.min } : {}), ...(t.max !== undefined ? { maximum: t.max } : {}) };
    case 'boolean': return { type: 'boolean' };
    case 'list': return { type: 'array', items: jsonType(t.of), ...(t.minItems ? { minItems: t.minItems } : {}) };
    case 'backend': return { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1 }] };
    case 'submoduleMap': return { type: 'object', propertyNames: { pattern: SUBMODULE_KEY.source }, additionalProperties: jsonType(t.of) };
  }
}

/** An npm package name, scoped or not. */
export const NPM_NAME = /^(@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/;

/** sfc submodule names; hook names and other aliases are resolved once a model is loaded. */
export const SUBMODULE_KEY = /^(embed|(attn|mlp|resid)_\d+)$/;
