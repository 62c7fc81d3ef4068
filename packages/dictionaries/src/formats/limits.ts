// Resource caps shared by the binary format readers (torch zip, npy/npz, circuits). Every size a
// file declares is checked against these before anything is allocated, so a hostile or corrupt
// file fails with a FormatError instead of exhausting memory.

export interface FormatLimits {
  /** Largest single zip entry or .npy payload, uncompressed (default 4 GiB − 1). */
  readonly maxEntryBytes?: number;
  /** Sum of the uncompressed sizes of all entries read from one archive (default 16 GiB). */
  readonly maxArchiveBytes?: number;
  /** Largest element count of one tensor (default 2^31 − 1, as the safetensors reader). */
  readonly maxElements?: number;
  /** Sum of the element counts of all tensors materialized from one file (default 2^32). */
  readonly maxTotalElements?: number;
  /**
   * Largest tensor that has more elements than its storage (stride-0 or overlapping views, e.g.
   * a saved `t.expand(...)`): such views cost memory the file never paid for (default 2^24).
   */
  readonly maxExpandedElements?: number;
  /** Largest .npy header (default 1 MiB; numpy itself writes a few hundred bytes). */
  readonly maxHeaderBytes?: number;
}

export type ResolvedLimits = Required<FormatLimits>;

export const DEFAULT_LIMITS: ResolvedLimits = Object.freeze({
  maxEntryBytes: 2 ** 32 - 1,
  maxArchiveBytes: 2 ** 34,
  maxElements: 2 ** 31 - 1,
  maxTotalElements: 2 ** 32,
  maxExpandedElements: 2 ** 24,
  maxHeaderBytes: 2 ** 20,
});

export function resolveLimits(limits: FormatLimits | undefined): ResolvedLimits {
  return { ...DEFAULT_LIMITS, ...(limits ?? {}) };
}

/** Counts the elements materialized from one file against `maxTotalElements`. */
export class ElementBudget {
  private used = 0;
  constructor(private readonly limit: number, private readonly onExceeded: (total: number) => Error) {}
  take(n: number): void {
    this.used += n;
    if (this.used > this.limit) throw this.onExceeded(this.used);
  }
}
