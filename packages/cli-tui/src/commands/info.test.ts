import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli.js';
import { memoryIO } from '../io.js';

const FIXTURE = fileURLToPath(new URL('../../../../fixtures/small-a/', import.meta.url));
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

async function infoWith(config: unknown, args: string[] = []) {
  const cwd = mkdtempSync(join(tmpdir(), 'sfc-info-'));
  dirs.push(cwd);
  writeFileSync(join(cwd, 'sfc.config.json'), JSON.stringify(config));
  const io = memoryIO({ cwd });
  const code = await runCli(['info', '--model', FIXTURE, '--json', ...args], io);
  return { cwd, code, out: io.out(), err: io.err() };
}

describe('sfc info: onnx settings from sfc.config.json reach the backend', () => {
  it('runs onnx with the configured threads, providers and graph cache', async () => {
    const r = await infoWith({ backend: 'onnx', onnx: { threads: 3, providers: ['cpu'], cacheDir: 'graphs' } });
    expect(r.code, r.err).toBe(0);
    const { backend } = JSON.parse(r.out) as { backend: { name: string; description: string; devices: string[] } };
    expect(backend.name).toBe('onnx');
    expect(backend.devices).toEqual(['cpu']);
    expect(backend.description).toContain(`, cpu, 3 intra-op threads, graph cache ${join(r.cwd, 'graphs')}`);
  });

  it('refuses onnx settings when the configured backend is not onnx (exit 2, before any backend loads)', async () => {
    const r = await infoWith({ backend: 'tfjs-wasm', onnx: { threads: 3 } });
    expect(r.code).toBe(2);
    expect(r.err).toBe(`error: onnx.threads (${join(r.cwd, 'sfc.config.json')}) set, but the backend is tfjs-wasm: onnx.* settings apply to the onnx backend only\n`
      + 'hint: set "backend": "onnx" (or a list that includes it) in sfc.config.json, or remove the onnx keys; the tfjs backends take no thread or execution-provider settings (docs/backends.md)\n');
  });
});
