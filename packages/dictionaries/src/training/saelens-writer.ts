// Writes a trained ReLU SAE as a SAELens folder — cfg.json in the 6.x layout (architecture
// "standard", the TransformerLens hook in metadata.hook_name) and sae_weights.safetensors
// (W_enc [d_in, d_sae], b_enc, W_dec [d_sae, d_in], b_dec, F32) — plus sfc's own training.json
// record beside them. Every file is written with core's writeFileAtomic (every byte checked,
// fsync, temp file + rename, no temp file left on a full disk), weights first and cfg.json after,
// so a reader never sees a config without its weights.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeSafetensors, ShapeError, writeFileAtomic } from '@sfc/core';
import type { ReluSaeWeights } from './relu-sae-trainer.js';

export interface SaeLensMetadata {
  /** TransformerLens hook name, e.g. `blocks.1.hook_resid_post`. */
  readonly hookName: string;
  readonly modelName?: string;
  readonly contextSize?: number | null;
  readonly datasetPath?: string | null;
  readonly prependBos?: boolean;
}

/** The cfg.json object (SAELens 6 `StandardSAEConfig` layout). */
export function saeLensConfig(weights: ReluSaeWeights, meta: SaeLensMetadata): Record<string, unknown> {
  const [dIn, dSae] = weights.W_enc.shape as [number, number];
  return {
    architecture: 'standard',
    d_in: dIn,
    d_sae: dSae,
    dtype: 'float32',
    device: 'cpu',
    apply_b_dec_to_input: true,
    normalize_activations: 'none',
    reshape_activations: 'none',
    metadata: {
      sae_lens_version: '6.0.0',
      sae_lens_training_version: '6.0.0',
      model_name: meta.modelName ?? null,
      hook_name: meta.hookName,
      hook_head_index: null,
      prepend_bos: meta.prependBos ?? false,
      context_size: meta.contextSize ?? null,
      dataset_path: meta.datasetPath ?? null,
      neuronpedia_id: null,
    },
  };
}

function checkShapes(w: ReluSaeWeights): void {
  const [dIn, dSae] = w.W_enc.shape as [number, number];
  const ok = w.W_enc.shape.length === 2 && w.W_dec.shape.length === 2 && w.W_dec.shape[0] === dSae && w.W_dec.shape[1] === dIn
    && w.b_enc.shape.length === 1 && w.b_enc.shape[0] === dSae && w.b_dec.shape.length === 1 && w.b_dec.shape[0] === dIn;
  if (!ok) {
    throw new ShapeError(`inconsistent SAE weights: W_enc [${w.W_enc.shape}], b_enc [${w.b_enc.shape}], W_dec [${w.W_dec.shape}], b_dec [${w.b_dec.shape}]`);
  }
}

/** Writes `dir/{sae_weights.safetensors, cfg.json[, training.json]}`; creates `dir` if needed. */
export async function writeSaeLensFolder(dir: string, weights: ReluSaeWeights, meta: SaeLensMetadata,
  training?: Record<string, unknown>): Promise<void> {
  checkShapes(weights);
  await mkdir(dir, { recursive: true });
  const tensors = new Map(Object.entries(weights).map(([k, t]) => [k, { shape: t.shape, data: t.data }]));
  await writeFileAtomic(join(dir, 'sae_weights.safetensors'), encodeSafetensors(tensors));
  await writeFileAtomic(join(dir, 'cfg.json'), `${JSON.stringify(saeLensConfig(weights, meta), null, 2)}\n`);
  if (training) await writeFileAtomic(join(dir, 'training.json'), `${JSON.stringify(training, null, 2)}\n`);
}
