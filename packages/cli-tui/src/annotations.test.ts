// Annotations as the reference ships them (feature-circuits annotations/*.jsonl, copied with their
// MIT license to fixtures/fc-data) and as Neuronpedia exports explanations; shown in steer output.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FormatError, NotFoundError } from '@sfc/core';
import { annotationOf, formatNodeWithAnnotation, parseAnnotations, readAnnotations } from './annotations.js';
import { runCli } from './cli.js';
import { memoryIO } from './io.js';

const FC = fileURLToPath(new URL('../../../fixtures/fc-data/annotations/', import.meta.url));

describe('feature-circuits annotation files', () => {
  it('reads the Pythia file, skipping its header row', async () => {
    const a = await readAnnotations(join(FC, 'pythia-70m-deduped.jsonl'));
    expect(a.get('resid_5/3036')).toBe('promotes singular verb forms');
    expect(a.has('Name')).toBe(false);
    expect(a.size).toBeGreaterThan(250);
  });

  it('reads the Gemma file, whose rows without an Annotation are skipped', async () => {
    const a = await readAnnotations(join(FC, 'gemma-2-2b.jsonl'));
    expect(a.get('resid_0/3974')).toBe('plural nouns');
    expect(a.has('embed/1425')).toBe(false);
    expect(a.size).toBe(214); // 444 annotated rows name 214 features (one is the header row)
    expect(a.get('resid_6/11417')).toBe('plural nouns; tokens ending in "s"'); // annotated in two circuits
  });

  it('fails on a line that is not JSON, naming the line; a missing file is NotFound', async () => {
    expect(() => parseAnnotations('{"Name": "resid_0/1", "Annotation": "x"}\n{oops', 'f.jsonl')).toThrow(FormatError);
    expect(() => parseAnnotations('{"Name": "resid_0/1", "Annotation": "x"}\n{oops', 'f.jsonl')).toThrow(/f\.jsonl:2/);
    await expect(readAnnotations('/nonexistent/ann.jsonl')).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('labels are file text', () => {
  it('lose terminal escapes and line breaks and are capped, in both formats', () => {
    const evil = 'plural\u001b]0;pwned\u0007 nouns\nsecond line';
    const a = parseAnnotations(`${JSON.stringify({ Name: 'resid_0/1', Annotation: evil })}\n${JSON.stringify({ Name: 'resid_0/2', Annotation: 'x'.repeat(5000) })}`);
    expect(a.get('resid_0/1')).toBe('plural\\x1b]0;pwned\\x07 nouns second line');
    expect(a.get('resid_0/2')!.length).toBeLessThan(400);
    const np = parseAnnotations(JSON.stringify([{ layer: '0-res-sm', index: 3, description: '\u202eevil' }]));
    expect(np.get('resid_0/3')).toBe('\\u202eevil');
  });
});

describe('Neuronpedia explanation exports', () => {
  const EXPORT = JSON.stringify([
    { modelId: 'pythia-70m-deduped', layer: '3-res-sm', index: '1234', description: ' plural subjects', explanationModelName: 'gpt-4o-mini' },
    { modelId: 'pythia-70m-deduped', layer: '3-res-sm', index: '1234', description: 'a second explanation' },
    { modelId: 'pythia-70m-deduped', layer: 'e-res-sm', index: 7, description: 'the word "the"' },
    { modelId: 'pythia-70m-deduped', layer: '2-att-sm', index: 5, description: 'attends to the subject' },
  ]);

  it('maps layers to submodules and keeps the first explanation of a feature', () => {
    const a = parseAnnotations(EXPORT);
    expect(Object.fromEntries(a)).toEqual({ 'resid_3/1234': 'plural subjects', 'embed/7': 'the word "the"', 'attn_2/5': 'attends to the subject' });
    expect(parseAnnotations(JSON.stringify({ explanations: JSON.parse(EXPORT) })).size).toBe(3);
  });

  it('refuses rows that are not explanations', () => {
    expect(() => parseAnnotations('[{"layer": "3-res-sm"}]', 'np.json')).toThrow(/np\.json: explanation 0/);
  });
});

describe('a node with its annotation', () => {
  const a = new Map([['resid_5/3036', 'promotes singular verb forms']]);
  it('labels features, also at a position, and leaves others alone', () => {
    expect(formatNodeWithAnnotation('resid_5/3036', a)).toBe('resid_5/3036 “promotes singular verb forms”');
    expect(annotationOf(a, 'resid_5/3036@4')).toBe('promotes singular verb forms');
    expect(formatNodeWithAnnotation('resid_5/1', a)).toBe('resid_5/1');
  });

  it('appears in sfc steer output (from --annotations or the config key)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sfc-ann-'));
    writeFileSync(join(dir, 'sfc.config.json'), JSON.stringify({ annotations: join(FC, 'pythia-70m-deduped.jsonl') }));
    for (const args of [['--annotations', join(FC, 'pythia-70m-deduped.jsonl')], []]) {
      const io = memoryIO({ cwd: dir });
      const code = await runCli(['steer', '--features', 'resid_5/3036,resid_5/1', '--op', 'ablate', '--dry-run', ...args], io);
      expect(code, io.err()).toBe(0);
      expect(io.out()).toContain('resid_5/3036  “promotes singular verb forms”');
    }
  });
});
