// File access and checks every loader plugin shares: typed errors for missing/invalid files,
// and the width check against the model that names the submodule.

import { closeSync, existsSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { CapabilityError, ConfigError, FormatError, NotFoundError, ShapeError, formatBytes, type Dictionary, type DictionaryLoadContext } from '@sfc/core';

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

/** readFile refuses files past 2 GiB − 1; larger ones are read by position into one array. */
const READ_FILE_MAX = 2 ** 31 - 1;
/** The largest typed array Node 20 makes (bytes). */
const MAX_ARRAY_BYTES = 2 ** 32;

export async function readBytes(path: string, hint: string): Promise<Uint8Array> {
  if (!isFile(path)) throw new NotFoundError(`${path} does not exist`, hint);
  if (statSync(path).size > READ_FILE_MAX) return readByPosition(path);
  const b = await readFile(path);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength); // the Buffer's bytes, not a copy of them
}

/** The whole file, read by position in chunks (for files readFile refuses); past 4 GiB a CapabilityError. */
export function readByPosition(path: string, chunk = 2 ** 30): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > MAX_ARRAY_BYTES) {
      throw new CapabilityError(`${path} is ${formatBytes(size)}; dictionary files are read whole, and Node's arrays stop at 4 GiB`,
        'use a narrower SAE (fewer features), or split the weights into a SAELens folder of safetensors under 4 GiB');
    }
    const out = new Uint8Array(size);
    for (let done = 0; done < size;) {
      const n = readSync(fd, out, done, Math.min(chunk, size - done), done);
      if (n === 0) throw new FormatError(`${path}: file ended ${size - done} bytes early`, 'the file is truncated; copy it again');
      done += n;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

export async function readJson(path: string, hint: string): Promise<unknown> {
  const text = new TextDecoder().decode(await readBytes(path, hint));
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FormatError(`${path} is not valid JSON: ${(e as Error).message}`, hint);
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
