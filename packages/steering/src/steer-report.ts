// `sfc.steer/v1`: what a steering run resolved and measured, as versioned plain data the CLI
// writes (atomically) with --json: the features, the interventions, per-prompt before/after
// scores and summary, generations side by side, and sweep rows. Pure: no I/O here.

import { featureId, featureRef, type FeatureRef } from './feature-ref.js';
import { formatOp, formatPositions, type Intervention, type SteerOp } from './intervention.js';
import type { SideBySide } from './generation.js';
import type { PromptScore, ScoreSummary } from './scoring.js';
import type { SweepRow } from './sweep.js';
import type { Calibration } from './calibrate.js';
import type { Fluency } from './fluency.js';

export const STEER_SCHEMA = 'sfc.steer/v1';

export interface SteerFeatureJson {
  readonly id: string;
  readonly submodule: string;
  /** Feature index; null for an SAE error node (its index is the dictionary width, unknown without one). */
  readonly index: number | null;
  readonly pos: number | null;
}

export interface SteerReport {
  readonly schema: typeof STEER_SCHEMA;
  /** Nothing was run (features resolved only). */
  readonly dryRun: boolean;
  readonly features: readonly SteerFeatureJson[];
  readonly interventions: readonly { readonly id: string; readonly op: SteerOp; readonly opText: string; readonly positions: string }[];
  readonly prompts?: readonly (PromptScore & { readonly prompt?: string })[];
  readonly summary?: ScoreSummary;
  readonly generations?: readonly SideBySide[];
  readonly sweep?: readonly SweepRow[];
  readonly calibration?: Calibration;
  /** Per generation (same order): mean log-prob of each side's text under the unsteered model. */
  readonly fluency?: readonly Fluency[];
  readonly [key: string]: unknown;
}

export interface SteerReportInput {
  readonly features: readonly FeatureRef[];
  readonly interventions?: readonly Intervention[];
  readonly prompts?: readonly PromptScore[];
  /** Prompt texts by PromptScore.example (data rows) or PromptScore.index, when known. */
  readonly promptTexts?: readonly string[];
  readonly summary?: ScoreSummary;
  readonly generations?: readonly SideBySide[];
  readonly sweep?: readonly SweepRow[];
  readonly calibration?: Calibration;
  readonly fluency?: readonly Fluency[];
  /** Extra metadata (model, dictionaries, backend, …) merged in. */
  readonly meta?: Readonly<Record<string, unknown>>;
}

export function featureJson(f: FeatureRef): SteerFeatureJson {
  return { id: featureId(f), submodule: f.submodule, index: f.kind === 'feature' ? f.index : null, pos: f.pos };
}

export function steerReport(input: SteerReportInput): SteerReport {
  const ran = input.prompts !== undefined || input.generations !== undefined || input.sweep !== undefined || input.calibration !== undefined;
  const report: Record<string, unknown> = {
    schema: STEER_SCHEMA,
    ...input.meta,
    dryRun: !ran,
    features: input.features.map(featureJson),
    interventions: (input.interventions ?? []).map((iv) => ({
      id: featureId(featureRef(iv.submodule, iv.feature)), op: iv.op, opText: formatOp(iv.op), positions: formatPositions(iv.positions),
    })),
  };
  if (input.prompts) {
    report.prompts = input.prompts.map((p) => {
      const text = input.promptTexts?.[p.example ?? p.index];
      return text === undefined ? p : { prompt: text, ...p };
    });
  }
  if (input.summary) report.summary = input.summary;
  if (input.generations) report.generations = input.generations;
  if (input.sweep) report.sweep = input.sweep;
  if (input.calibration) report.calibration = input.calibration;
  if (input.fluency) report.fluency = input.fluency;
  return report as SteerReport;
}
