// Writes safetensors checkpoints too large to build in memory: every tensor's header entry is
// known up front, then its bytes are produced chunk by chunk and appended. Shards the tensors
// into files of at most `maxShardBytes` with a `model.safetensors.index.json`, as transformers'
// save_pretrained does. Dev tool for the benchmark generator (bench/generate-gemma2.ts).

import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SAFETENSORS_DTYPE_BYTES } from '@sfc/core';

export interface StreamTensor {
  readonly name: string;
  readonly dtype: 'F32' | 'BF16';
  readonly shape: readonly number[];
  /** Produces the tensor's values in order, `count` at a time, as raw little-endian bytes. */
  readonly fill: (write: (bytes: Uint8Array) => void) => void;
}

const bytesOf = (t: StreamTensor) => t.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BYTES[t.dtype];

function writeFile(path: string, tensors: readonly StreamTensor[]): number {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytesOf(t)] };
    offset += bytesOf(t);
  }
  const raw = new TextEncoder().encode(JSON.stringify(header));
  const padded = new Uint8Array(Math.ceil(raw.length / 8) * 8).fill(0x20);
  padded.set(raw);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(padded.length), true);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, len);
    writeSync(fd, padded);
    for (const t of tensors) {
      let n = 0;
      t.fill((bytes) => { writeSync(fd, bytes); n += bytes.byteLength; });
      if (n !== bytesOf(t)) throw new Error(`internal: ${t.name} produced ${n} bytes, expected ${bytesOf(t)}`);
    }
  } finally {
    closeSync(fd);
  }
  return 8 + padded.length + offset;
}

/** Writes `tensors` in order as one model.safetensors, or as shards + index when they exceed `maxShardBytes`. Returns the files' total bytes. */
export function writeCheckpoint(dir: string, tensors: readonly StreamTensor[], maxShardBytes: number): number {
  const shards: StreamTensor[][] = [[]];
  let size = 0;
  for (const t of tensors) {
    if (size > 0 && size + bytesOf(t) > maxShardBytes) { shards.push([]); size = 0; }
    shards[shards.length - 1]!.push(t);
    size += bytesOf(t);
  }
  if (shards.length === 1) return writeFile(join(dir, 'model.safetensors'), tensors);
  const n = String(shards.length).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  let total = 0;
  shards.forEach((ts, i) => {
    const file = `model-${String(i + 1).padStart(5, '0')}-of-${n}.safetensors`;
    total += writeFile(join(dir, file), ts);
    for (const t of ts) weightMap[t.name] = file;
  });
  const totalSize = tensors.reduce((a, t) => a + bytesOf(t), 0);
  writeFileSync(join(dir, 'model.safetensors.index.json'), `${JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2)}\n`);
  return total;
}
