// Feature annotations for plots, in feature-circuits' JSON-lines format:
// {"Name": "resid_5/3036", "Annotation": "plural nouns"} — one per line.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { FormatError, jsonSyntaxError, NotFoundError } from '@sfc/core';

export async function readAnnotations(path: string): Promise<Map<string, string>> {
  if (!existsSync(path)) throw new NotFoundError(`annotations file ${path} does not exist`, 'give a JSON-lines file of {"Name": "resid_5/3036", "Annotation": "..."}');
  return parseAnnotations(await readFile(path, 'utf8'), path);
}

export function parseAnnotations(text: string, source = 'annotations'): Map<string, string> {
  const out = new Map<string, string>();
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let r: unknown;
    try { r = JSON.parse(line); } catch (e) {
      throw new FormatError(`${source}:${i + 1}: not valid JSON (${jsonSyntaxError(e, line)})`, 'one JSON object per line: {"Name": "resid_5/3036", "Annotation": "..."}');
    }
    const o = r as Record<string, unknown>;
    if (typeof o !== 'object' || o === null || typeof o.Name !== 'string' || typeof o.Annotation !== 'string') {
      throw new FormatError(`${source}:${i + 1}: expected {"Name": string, "Annotation": string}`, 'one JSON object per line: {"Name": "resid_5/3036", "Annotation": "..."}');
    }
    out.set(o.Name, o.Annotation);
  });
  return out;
}
