// Progress reporting for long runs: library code never prints, it calls back.

export interface ProgressEvent {
  /** What is being counted: `batches`, `submodules`, `exact`, `edges`, `ablation`, `thresholds`. */
  readonly stage: string;
  readonly done: number;
  readonly total: number;
  /** The item just finished (a submodule, an edge pair), when useful to show. */
  readonly detail?: string;
}

export type ProgressCallback = (event: ProgressEvent) => void;
