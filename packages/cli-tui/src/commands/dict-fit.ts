// How well each dictionary fits a model's activations on one text, for `sfc dict info --text`:
// L0 (mean number of active features per token) and the fraction of variance explained,
// FVE = 1 − Σ‖x − x̂‖² / Σ‖x − mean(x)‖², with x the submodule's output at every token (the mean
// over tokens) and x̂ = decode(encode(x)). Computed in TensorOps on the model's own backend.

import { InputError, type Dictionary, type Model, type Tensor } from '@sfc/core';

export interface DictionaryFit {
  /** Tokens the statistics are over (every position of the text). */
  readonly tokens: number;
  /** Mean number of features with a nonzero activation per token. */
  readonly l0: number;
  /** 1 − Σ‖x − x̂‖² / Σ‖x − mean(x)‖²; NaN when x does not vary over the tokens. */
  readonly fve: number;
  /** Σ‖x − x̂‖² / tokens (mean squared reconstruction error per token). */
  readonly mse: number;
}

/** The fit of each [submodule, dictionary] pair on the activations of `text`, in the same order. */
export async function dictionaryFits(model: Model, dictionaries: ReadonlyArray<readonly [string, Dictionary]>, text: string): Promise<DictionaryFit[]> {
  const ids = model.encode(text);
  if (ids.length === 0) throw new InputError('--text encodes to no tokens', 'give a non-empty prompt');
  const ops = model.ops;
  const out: DictionaryFit[] = [];
  await ops.scope(async () => {
    const { values } = await model.forward(model.tokens(Int32Array.from(ids), 1, ids.length));
    for (const [name, dict] of dictionaries) {
      const x = values.get(model.submodule(name).name);
      if (!x) throw new InputError(`the forward pass recorded no activations at ${name}`, 'give a dictionary for one of the model\'s submodules');
      const d = x.shape[x.shape.length - 1]!;
      if (d !== dict.dIn) throw new InputError(`dictionary for ${name} has d_in ${dict.dIn} but the activations have width ${d}`, 'give the dictionary trained on this model\'s submodule');
      out.push(await fitOf(model, dict, ops.reshape(x, [-1, d])));
    }
  });
  return out;
}

async function fitOf(model: Model, dict: Dictionary, x: Tensor): Promise<DictionaryFit> {
  const ops = model.ops;
  const n = x.shape[0]!;
  const f = dict.encode(x);
  // Active means nonzero: |f| > 0 (negative activations count too, for architectures that allow them).
  const active = ops.sum(ops.greater(ops.abs(f), ops.zeros([1])));
  const residual = ops.sum(ops.square(ops.sub(x, dict.decode(f))));
  const total = ops.sum(ops.square(ops.sub(x, ops.mean(x, 0, true))));
  const [a, r, t] = await Promise.all([active.data(), residual.data(), total.data()]);
  const res = r[0]!, tot = t[0]!;
  return { tokens: n, l0: a[0]! / n, fve: tot > 0 ? 1 - res / tot : Number.NaN, mse: res / n };
}
