// What `sfc dict info` shows about a loaded dictionary: plain data, no formatting.
import type { Dictionary } from '@sfc/core';

export interface DictionaryDescription {
  readonly format: string;
  readonly architecture: string;
  readonly dIn: number;
  readonly dSae: number;
  readonly hook?: string;
  readonly source?: string;
  readonly details: Readonly<Record<string, string | number | boolean>>;
}

export function describeDictionary(dict: Dictionary): DictionaryDescription {
  return {
    format: dict.format ?? 'unknown',
    architecture: dict.architecture,
    dIn: dict.dIn,
    dSae: dict.dSae,
    ...(dict.hook !== undefined ? { hook: dict.hook } : {}),
    ...(dict.source !== undefined ? { source: dict.source } : {}),
    details: { ...dict.details },
  };
}
