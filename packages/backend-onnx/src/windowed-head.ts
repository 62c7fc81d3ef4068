// The unembedding over the whole vocabulary when its [vocab, d] table is kept on disk
// (disk-table.ts): the table's row chunks are grouped into windows; each window's rows are read
// into one reused buffer and fed to a graph over that window only (SegmentVariant.window), and
// the windows' logits are placed side by side (or their input cotangents summed). So only one
// window of the table is in memory at a time. Every window but the last has the same widths, so
// two graphs serve the whole vocabulary.

import type * as ort from 'onnxruntime-node';
import type { DiskTable } from './disk-table.js';
import { ortTensor } from './ort-session.js';
import { windowFeed } from './segment-program.js';

/** The table kept on disk and the canonical weight it stands for. */
export interface TableOnDisk {
  readonly name: string;
  readonly table: DiskTable;
}

/** Row chunks per window: 8 chunks of ~16 MiB float32 each, ~64 MiB of fp16 rows read per window. */
export const WINDOW_CHUNKS = 8;

export interface HeadWindow {
  /** Index of the window's first row chunk. */
  readonly chunk: number;
  /** Its first vocabulary row and its number of rows. */
  readonly first: number;
  readonly rows: number;
  /** Row counts of its chunks. */
  readonly widths: readonly number[];
}

export function headWindows(rowChunks: readonly number[], perWindow = WINDOW_CHUNKS): HeadWindow[] {
  const out: HeadWindow[] = [];
  let first = 0;
  for (let chunk = 0; chunk < rowChunks.length; chunk += perWindow) {
    const widths = rowChunks.slice(chunk, chunk + perWindow);
    const rows = widths.reduce((a, b) => a + b, 0);
    out.push({ chunk, first, rows, widths });
    first += rows;
  }
  return out;
}

/**
 * The feeds of one window: its rows read from the table, split into its chunks, and (per-row
 * scales) the factors of those chunks — `scaleRows(i)` gives chunk i's, held in memory.
 */
export function windowFeeds(name: string, w: HeadWindow, table: DiskTable, scaleRows: (chunk: number) => ort.Tensor | undefined): Record<string, ort.Tensor> {
  const rows = table.window(w.first, w.rows);
  const cols = table.cols;
  const feeds: Record<string, ort.Tensor> = {};
  let at = 0;
  w.widths.forEach((r, k) => {
    feeds[windowFeed.rows(name, k)] = ortTensor('float16', rows.subarray(at * cols, (at + r) * cols), [r, cols]);
    const factors = scaleRows(w.chunk + k);
    if (factors) feeds[windowFeed.scaleRows(name, k)] = factors;
    at += r;
  });
  return feeds;
}

/** Writes `part` [..., rows] into columns first … first + rows − 1 of `out` [..., V]. */
export function placeColumns(out: Float32Array, V: number, part: Float32Array, first: number, rows: number): void {
  for (let p = 0, n = part.length / rows; p < n; p++) out.set(part.subarray(p * rows, (p + 1) * rows), p * V + first);
}

/** Columns first … first + rows − 1 of `x` [..., V], as [..., rows]. */
export function takeColumns(x: Float32Array, V: number, first: number, rows: number): Float32Array {
  const n = x.length / V;
  const out = new Float32Array(n * rows);
  for (let p = 0; p < n; p++) out.set(x.subarray(p * V + first, p * V + first + rows), p * rows);
  return out;
}
