// What a feature means, from files made by people or by Neuronpedia (docs/formats.md,
// "Annotations"): feature-circuits' JSON lines ({"Name": "resid_5/3036", "Annotation": "…"}, as in
// its annotations/*.jsonl) and Neuronpedia explanation exports (a JSON array of
// {modelId, layer: "3-res-sm", index, description}). Both become one map from node id to label,
// which the TUI, `sfc plot` and `sfc steer` show next to node ids.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { FormatError, jsonSyntaxError, NotFoundError, sanitizeMessage, tryParseNodeId } from '@sfc/core';
import { parseNeuronpediaLayer } from '@sfc/steering';

/** Labels by node id (positions dropped: `resid_5/3036`). */
export type Annotations = ReadonlyMap<string, string>;

const HINT = 'give JSON lines {"Name": "resid_5/3036", "Annotation": "..."} (feature-circuits) or a Neuronpedia explanation export (a JSON array of {"layer": "3-res-sm", "index": 1234, "description": "..."})';

export async function readAnnotations(path: string): Promise<Map<string, string>> {
  if (!existsSync(path)) throw new NotFoundError(`annotations file ${path} does not exist`, HINT);
  return parseAnnotations(await readFile(path, 'utf8'), path);
}

/** Longest label kept: labels are file text shown in the terminal, the TUI and plots. */
const MAX_LABEL_CHARS = 300;

/** A label from a file on one line, without terminal escapes and at most MAX_LABEL_CHARS long (docs/formats.md, Safety guarantees). */
function cleanLabel(s: string): string {
  return sanitizeMessage(s.replace(/\s+/g, ' ').trim(), MAX_LABEL_CHARS);
}

/** A feature id of a node id (annotation files name features without positions); undefined for `y` and malformed ids. */
function featureKey(name: string): string | undefined {
  const ref = tryParseNodeId(name.trim());
  if (!ref || ref.kind === 'metric') return undefined;
  return ref.kind === 'error' ? `${ref.submodule}/err` : `${ref.submodule}/${ref.index}`;
}

/**
 * feature-circuits JSON lines: distinct labels of one feature are joined with "; "; rows without an annotation (the reference files have some, and a
 * header row `{"Name": "Name", …}`) are skipped; a row that is not a JSON object is an error.
 */
function parseJsonLines(text: string, source: string): Map<string, string> {
  const out = new Map<string, string>();
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let r: unknown;
    try { r = JSON.parse(line); } catch (e) {
      throw new FormatError(`${source}:${i + 1}: not valid JSON (${jsonSyntaxError(e, line)})`, HINT);
    }
    if (typeof r !== 'object' || r === null || Array.isArray(r) || typeof (r as Record<string, unknown>).Name !== 'string') {
      throw new FormatError(`${source}:${i + 1}: expected an object with "Name" (a node id like resid_5/3036)`, HINT);
    }
    const o = r as Record<string, unknown>;
    const key = featureKey(o.Name as string);
    const label = typeof o.Annotation === 'string' ? cleanLabel(o.Annotation) : '';
    if (!key || !label) return;
    // A feature annotated in several of the reference's circuits: every distinct label, in file order.
    const prev = out.get(key);
    if (prev === undefined) out.set(key, label);
    else if (!prev.split('; ').includes(label)) out.set(key, `${prev}; ${label}`);
  });
  return out;
}

/** Neuronpedia explanation export: the first explanation of each feature is kept. */
function parseNeuronpedia(rows: readonly unknown[], source: string): Map<string, string> {
  const out = new Map<string, string>();
  rows.forEach((r, i) => {
    const o = r as Record<string, unknown> | null;
    const index = typeof o?.index === 'number' ? o.index : typeof o?.index === 'string' ? Number(o.index) : NaN;
    if (!o || typeof o.layer !== 'string' || !Number.isSafeInteger(index) || index < 0 || typeof o.description !== 'string') {
      throw new FormatError(`${source}: explanation ${i} is not {layer, index, description}`, HINT);
    }
    const key = `${parseNeuronpediaLayer(o.layer).submodule}/${index}`;
    const label = cleanLabel(o.description);
    if (label && !out.has(key)) out.set(key, label);
  });
  return out;
}

export function parseAnnotations(text: string, source = 'annotations'): Map<string, string> {
  const t = text.trimStart();
  if (t.startsWith('[') || (t.startsWith('{') && !t.includes('\n'))) {
    let v: unknown;
    try { v = JSON.parse(t); } catch { v = undefined; }
    const rows = Array.isArray(v) ? v : (v as { explanations?: unknown } | undefined)?.explanations;
    if (Array.isArray(rows)) return parseNeuronpedia(rows, source);
  }
  return parseJsonLines(text, source);
}

/**
 * The node's annotation: by its id, else (for a position-resolved node `resid_3/12@4`) by the
 * id without position, which is how annotation files name features.
 */
export function annotationOf(annotations: Annotations | undefined, id: string): string | undefined {
  if (!annotations) return undefined;
  return annotations.get(id) ?? annotations.get(id.replace(/@\d+$/, ''));
}

/** `resid_5/3036 “promotes singular verb forms”`, or the id alone without an annotation. */
export function formatNodeWithAnnotation(id: string, annotations: Annotations | undefined): string {
  const a = annotationOf(annotations, id);
  return a === undefined ? id : `${id} “${a}”`;
}
