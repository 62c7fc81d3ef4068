import { describe, expect, it } from 'vitest';
import { checkValue, suggest, validateConfigObject } from './validate.js';
import { CONFIG_FIELDS, fieldAt, toJsonSchema } from './schema.js';

const steps = fieldAt('circuit.steps')!.type;

describe('checkValue', () => {
  it('names the key path, the expected type and the value it got', () => {
    expect(checkValue(steps, 'ten', 'circuit.steps')).toEqual({ ok: false, error: 'circuit.steps: expected integer ≥ 1, got "ten"' });
    expect(checkValue(steps, 0, 'circuit.steps')).toEqual({ ok: false, error: 'circuit.steps: expected integer ≥ 1, got 0' });
    expect(checkValue(steps, 2.5, 'circuit.steps')).toMatchObject({ ok: false });
    expect(checkValue(steps, 10, 'circuit.steps')).toEqual({ ok: true, value: 10 });
  });

  it('is strict about JSON types in files but coerces command-line text', () => {
    expect(checkValue(steps, '10', 'circuit.steps').ok).toBe(false);
    expect(checkValue(steps, '10', '--steps', true)).toEqual({ ok: true, value: 10 });
    expect(checkValue(steps, '010', '--steps', true)).toEqual({ ok: true, value: 10 });
    expect(checkValue(steps, 'ten', '--steps', true)).toEqual({ ok: false, error: '--steps: expected integer ≥ 1, got "ten"' });
    const thr = fieldAt('evaluate.thresholds')!.type;
    expect(checkValue(thr, '0.1, 0.2,1e-3', '--thresholds', true)).toEqual({ ok: true, value: [0.1, 0.2, 0.001] });
    expect(checkValue(thr, '0.1,x', '--thresholds', true)).toEqual({ ok: false, error: '--thresholds item 2: expected number ≥ 0, got "x"' });
    expect(checkValue(thr, [0.1, 'x'], 'evaluate.thresholds')).toEqual({ ok: false, error: 'evaluate.thresholds[1]: expected number ≥ 0, got "x"' });
    expect(checkValue(thr, [], 'evaluate.thresholds').ok).toBe(false);
    const bool = fieldAt('circuit.minLengthOnly')!.type;
    expect(checkValue(bool, 'false', '--min-length-only', true)).toEqual({ ok: true, value: false });
    expect(checkValue(bool, 'false', 'circuit.minLengthOnly').ok).toBe(false);
  });

  it('checks enums, backends and submodule maps', () => {
    expect(checkValue(fieldAt('circuit.method')!.type, 'IG', 'circuit.method'))
      .toEqual({ ok: false, error: 'circuit.method: expected one of attrib, ig, exact, got "IG"' });
    const backend = fieldAt('backend')!.type;
    for (const ok of ['tfjs', 'tfjs-wasm', 'onnx', 'sfc-backend-webgpu', '@acme/sfc-backend']) {
      expect(checkValue(backend, ok, 'backend').ok, ok).toBe(true);
    }
    expect(checkValue(backend, './local-backend.js', 'backend').ok).toBe(false); // a config file names packages only
    expect(checkValue(backend, './local-backend.js', '--backend', true).ok).toBe(true); // the command line may give a file
    expect(checkValue(backend, ['tfjs-wasm', 'tfjs-cpu'], 'backend')).toEqual({ ok: true, value: ['tfjs-wasm', 'tfjs-cpu'] });
    expect(checkValue(backend, 'tfjs-wasm,tfjs-cpu', '--backend', true)).toEqual({ ok: true, value: ['tfjs-wasm', 'tfjs-cpu'] });
    expect(checkValue(backend, 'TF JS', 'backend')).toMatchObject({ ok: false, error: expect.stringContaining('got "TF JS"') });
    expect(checkValue(backend, [], 'backend').ok).toBe(false);
    const map = fieldAt('dictionaries.submodules')!.type;
    expect(checkValue(map, { resid_3: 'a', embed: 'b' }, 'dictionaries.submodules').ok).toBe(true);
    expect(checkValue(map, { layer3: 'a' }, 'dictionaries.submodules'))
      .toEqual({ ok: false, error: "dictionaries.submodules: 'layer3' is not a submodule name (expected embed, attn_L, mlp_L or resid_L)" });
    expect(checkValue(map, { resid_3: 3 }, 'dictionaries.submodules'))
      .toEqual({ ok: false, error: 'dictionaries.submodules.resid_3: expected a path, got 3' });
  });
});

describe('validateConfigObject', () => {
  it('collects every problem with its key path', () => {
    const { errors } = validateConfigObject({
      backend: 'tfjs', circuit: { steps: 'ten', nodeTreshold: 0.1 }, evaluate: 3, modle: 'x',
    });
    expect(errors).toEqual([
      'circuit.steps: expected integer ≥ 1, got "ten"',
      "circuit.nodeTreshold: unknown key; did you mean 'circuit.nodeThreshold'?",
      'evaluate: expected an object, got 3',
      "modle: unknown key; did you mean 'model'?",
    ]);
  });

  it('suggests camelCase keys for snake_case spellings', () => {
    expect(validateConfigObject({ circuit: { node_threshold: 0.2 } }).errors)
      .toEqual(["circuit.node_threshold: unknown key; did you mean 'circuit.nodeThreshold'?"]);
    expect(suggest('xyzzy', ['model', 'backend'])).toBeUndefined();
  });

  it('returns values by key path; null unsets; $schema is allowed', () => {
    const { values, errors } = validateConfigObject({ $schema: './s.json', model: 'm', circuit: { steps: 4, seed: null } });
    expect(errors).toEqual([]);
    expect([...values]).toEqual([['model', 'm'], ['circuit.steps', 4]]);
  });

  it('rejects a non-object document', () => {
    expect(validateConfigObject([1]).errors).toEqual(['expected a JSON object at the top level, got [1]']);
  });
});

describe('schema', () => {
  it('every default passes its own validation', () => {
    for (const f of CONFIG_FIELDS) if (f.default !== undefined) expect(checkValue(f.type, f.default, f.path).ok, f.path).toBe(true);
  });

  it('exports a JSON Schema with every key', () => {
    const s = toJsonSchema() as { properties: Record<string, { properties?: Record<string, unknown> }> };
    for (const f of CONFIG_FIELDS) {
      const [a, b] = f.path.split('.');
      expect(b ? s.properties[a!]!.properties![b] : s.properties[a!], f.path).toBeDefined();
    }
  });
});
