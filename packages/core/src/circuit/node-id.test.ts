import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.js';
import { formatNodeId, nodeIdAt, parseNodeId, tryParseNodeId } from './node-id.js';

describe('node ids', () => {
  it('parses features, errors, positions and the metric', () => {
    expect(parseNodeId('resid_3/1234')).toEqual({ kind: 'feature', submodule: 'resid_3', index: 1234, pos: null });
    expect(parseNodeId('resid_3/err')).toEqual({ kind: 'error', submodule: 'resid_3', pos: null });
    expect(parseNodeId('attn_1/17@5')).toEqual({ kind: 'feature', submodule: 'attn_1', index: 17, pos: 5 });
    expect(parseNodeId('embed/err@0')).toEqual({ kind: 'error', submodule: 'embed', pos: 0 });
    expect(parseNodeId('y')).toEqual({ kind: 'metric' });
  });

  it('round-trips through formatNodeId', () => {
    for (const id of ['y', 'embed/0', 'mlp_12/32767@19', 'resid_0/err', 'attn_2/err@3']) expect(formatNodeId(parseNodeId(id))).toBe(id);
    expect(nodeIdAt('resid_1', 128, 128, null)).toBe('resid_1/err');
    expect(nodeIdAt('resid_1', 127, 128, 4)).toBe('resid_1/127@4');
  });

  it('rejects everything else with the grammar in the hint', () => {
    for (const bad of ['', 'Y', 'resid3/1', 'resid_3', 'resid_3/', 'resid_3/-1', 'resid_3/01', 'resid_3/1.5', 'resid_3/1@', 'resid_3/1@x',
      'foo_1/2', 'resid_3/ERR', ' resid_3/1', 'resid_3/1@01', 'embed_0/1']) {
      expect(tryParseNodeId(bad), bad).toBeUndefined();
    }
    try { parseNodeId('resid3/1'); expect.unreachable(); } catch (e) {
      expect(e).toBeInstanceOf(InputError);
      expect((e as InputError).hint).toMatch(/resid_3\/1234/);
    }
  });

  it('survives random strings (fuzz)', () => {
    let seed = 7;
    const rand = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
    const alphabet = 'residmlpatnembd_/@0123456789ery ';
    for (let i = 0; i < 5000; i++) {
      const s = Array.from({ length: Math.floor(rand() * 16) }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('');
      const r = tryParseNodeId(s);
      if (r) expect(formatNodeId(r)).toBe(s);
    }
  });
});
