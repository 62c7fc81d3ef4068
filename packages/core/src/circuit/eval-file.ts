// `sfc.eval/v1`: faithfulness and completeness rows of `sfc evaluate`, as plain JSON.

import type { EvaluationResult, EvaluationRow } from '../algorithms/evaluation.js';
import type { RunMetadata } from './effects-file.js';
import { compactNumber } from './json-checks.js';

export const EVAL_SCHEMA = 'sfc.eval/v1';

export interface EvalFile extends RunMetadata {
  readonly schema: typeof EVAL_SCHEMA;
  readonly numExamples: number;
  readonly ablation: string;
  readonly handleErrors: string;
  readonly startLayer: number;
  readonly metric: string;
  readonly submodules: readonly string[];
  readonly rows: EvaluationRow[];
}

export function evaluationToFile(result: EvaluationResult, meta: RunMetadata = {}): EvalFile {
  const c = (x: number | null) => (x === null ? null : compactNumber(x));
  return {
    schema: EVAL_SCHEMA, numExamples: result.numExamples, ablation: result.ablation, handleErrors: result.handleErrors,
    startLayer: result.startLayer, metric: result.metric, submodules: result.submodules,
    rows: result.rows.map((r) => ({
      threshold: r.threshold, nodes: r.nodes, faithfulness: c(r.faithfulness), completeness: c(r.completeness),
      mFull: c(r.mFull)!, mEmpty: c(r.mEmpty)!, mCircuit: c(r.mCircuit)!, mComplement: c(r.mComplement)!,
    })),
    ...meta,
  };
}

export function serializeEvaluation(file: EvalFile): string {
  return `${JSON.stringify(file, null, 1)}\n`;
}
