// File access and checks every loader plugin shares: typed errors for missing/invalid files,
// and the width check against the model that names the submodule.

import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { ConfigError, FormatError, jsonSyntaxError, NotFoundError, ShapeError, type Dictionary, type DictionaryLoadContext } from '@sfc/core';
import { withFileSource, type ByteSource } from '../formats/byte-source.js';

export function isFile(path: string): boolean {
  try {
    return existsSync(path) && statSync(path).isFile();
  } catch {
    return false;
  }
}

export function isDirectory(path: string): boolean {
  try {
    return existsSync(path) && statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export async function readBytes(path: string, hint: string): Promise<Uint8Array> {
  if (!isFile(path)) throw new NotFoundError(`${path} does not exist`, hint);
  const b = await readFile(path);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength); // the Buffer's bytes, not a copy of them
}

/**
 * Runs `read` on the file at `path` read by offset (a ByteSource), for weight files that may be
 * larger than one readFile can return (2 GiB); the file is closed afterwards.
 */
export function readByOffset<T>(path: string, hint: string, read: (source: ByteSource) => T): T {
  if (!isFile(path)) throw new NotFoundError(`${path} does not exist`, hint);
  return withFileSource(path, read);
}

export async function readJson(path: string, hint: string): Promise<unknown> {
  const text = new TextDecoder().decode(await readBytes(path, hint));
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${path} is not valid JSON: ${jsonSyntaxError(e, text)}`, hint);
  }
}

/** Throws a ShapeError naming the submodule when the dictionary's width differs from the model's. */
export function checkWidth(dict: Dictionary, ctx: DictionaryLoadContext): void {
  if (ctx.dIn !== undefined && dict.dIn !== ctx.dIn) {
    const where = ctx.submodule ? ` for submodule '${ctx.submodule}'` : '';
    dict.dispose();
    throw new ShapeError(`dictionary${where} from ${dict.source ?? '?'} has d_in = ${dict.dIn}, but the model's width is ${ctx.dIn}`,
      'the dictionary was trained on another model or submodule; check the dictionaries folder matches --model');
  }
}

/** A loader option as a number, or undefined; a wrong type is a ConfigError. */
export function numberOption(ctx: DictionaryLoadContext, name: string): number | undefined {
  const v = ctx.options?.[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(`option ${name} must be a finite number, got ${JSON.stringify(v)}`);
  return v;
}

export function booleanOption(ctx: DictionaryLoadContext, name: string, fallback: boolean): boolean {
  const v = ctx.options?.[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new ConfigError(`option ${name} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}
