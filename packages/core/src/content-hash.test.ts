import { mkdtempSync, writeFileSync, copyFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { contentHash, FULL_HASH_LIMIT, modelContentHash } from './content-hash.js';
import { NotFoundError } from './errors.js';

function folder(files: Record<string, Uint8Array | string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'sfc-hash-'));
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
  return dir;
}

function safetensors(fill: number, size: number): Uint8Array {
  const header = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [(size - 64) / 4], data_offsets: [0, size - 64] } }).padEnd(56));
  const out = new Uint8Array(8 + header.length + size - 64);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  out.fill(fill, 8 + header.length);
  return out;
}

describe('content hashes', () => {
  it('is the same for the same content at another path, and differs when a file differs', async () => {
    const a = folder({ 'config.json': '{"a":1}', 'x.bin': new Uint8Array(3000).fill(1) });
    const b = mkdtempSync(join(tmpdir(), 'sfc-hash-'));
    for (const f of ['config.json', 'x.bin']) copyFileSync(join(a, f), join(b, f));
    expect(await contentHash(a)).toBe(await contentHash(b));
    expect(await contentHash(a)).toMatch(/^sampled-sha256:[0-9a-f]{64}$/);
    writeFileSync(join(b, 'config.json'), '{"a":2}');
    expect(await contentHash(a)).not.toBe(await contentHash(b));
  });

  it('samples large files: other weights change it, the safetensors header is covered', async () => {
    const size = FULL_HASH_LIMIT * 3;
    const a = folder({ 'config.json': '{}', 'model.safetensors': safetensors(1, size) });
    const b = folder({ 'config.json': '{}', 'model.safetensors': safetensors(2, size) });
    expect(await modelContentHash(a)).not.toBe(await modelContentHash(b));
  });

  it('covers only the files that define a model', async () => {
    const a = folder({ 'config.json': '{}', 'tokenizer.json': '{}', 'model.safetensors': safetensors(1, 4096) });
    const h = await modelContentHash(a);
    writeFileSync(join(a, 'training.json'), '{"loss": 1}');
    mkdirSync(join(a, 'sub'));
    expect(await modelContentHash(a)).toBe(h);
    expect(await contentHash(a)).not.toBe(h);
  });

  it('names a missing folder', async () => {
    await expect(contentHash('/nonexistent/sfc-model')).rejects.toBeInstanceOf(NotFoundError);
  });
});
