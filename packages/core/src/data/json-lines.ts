// JSON-lines reading shared by the pair and single-prompt loaders: lines as Python's readlines()
// gives them, one JSON object per line, string fields checked with messages naming the line.

import { FormatError, InputError } from '../errors.js';
import { jsonSyntaxError } from '../circuit/json-checks.js';

export interface RawLine {
  readonly line: number;
  readonly text: string;
}

/** Lines as Python's text-mode readlines() gives them (universal newlines; no empty line after a final newline). */
export function splitLines(text: string): string[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split(/\r\n|\r|\n/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** The JSON object on a line (undefined for a blank line). */
export function parseLineObject(raw: RawLine, source: string): Record<string, unknown> | undefined {
  if (raw.text.trim() === '') return undefined;
  let data: unknown;
  try {
    data = JSON.parse(raw.text);
  } catch (e) {
    throw new FormatError(`${source} line ${raw.line} is not valid JSON: ${jsonSyntaxError(e, raw.text)}`,
      'each line must be one JSON object like {"clean_prefix": …, "patch_prefix": …, "clean_answer": …, "patch_answer": …}');
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new FormatError(`${source} line ${raw.line} is not a JSON object`, 'each line must be one JSON object');
  }
  return data as Record<string, unknown>;
}

/** Whether a line is a contrastive pair (has a patch field) rather than a single prompt. */
const PATCH_FIELDS = ['patch_prefix', 'patch_answer'] as const;

export function isPairedLine(obj: Record<string, unknown>): boolean {
  return PATCH_FIELDS.some((k) => k in obj);
}

/** The string fields `keys` of a line (and the optional `case`), or an InputError naming the line. */
export function requireStrings(obj: Record<string, unknown>, keys: readonly string[], where: string): void {
  for (const key of keys) {
    if (!(key in obj)) {
      throw new InputError(`${where}: missing field '${key}'`,
        `every line needs ${keys.join(', ')} (strings); 'case' is optional`);
    }
    if (typeof obj[key] !== 'string') {
      throw new InputError(`${where}: field '${key}' must be a string, got ${JSON.stringify(obj[key])}`);
    }
  }
  if (obj.case !== undefined && typeof obj.case !== 'string') {
    throw new InputError(`${where}: field 'case' must be a string, got ${JSON.stringify(obj.case)}`);
  }
}

