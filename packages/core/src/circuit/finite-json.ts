// The last check before an effects or circuit file is written: JSON has no NaN or Infinity
// (JSON.stringify writes null), and sfc's own readers refuse null where a number belongs, so a
// file with a non-finite value is refused here instead of being written unreadable
// (docs/formats.md: sfc never writes a file it cannot read back).

import { BackendError } from '../errors.js';

/** JSON.stringify(value), refusing NaN and ±Infinity with the JSON path of the first one. */
export function stringifyFinite(value: unknown, what: string): string {
  const path: string[] = [];
  const parents: unknown[] = [];
  return JSON.stringify(value, function (this: unknown, key: string, v: unknown) {
    // Track the path from the holder chain (cheap: only used when a bad value is found).
    while (parents.length && parents[parents.length - 1] !== this) { parents.pop(); path.pop(); }
    if (typeof v === 'number' && !Number.isFinite(v)) {
      const where = [...path, key].filter((k) => k !== '').map((k, i) => (/^\d+$/.test(k) ? `[${k}]` : i ? `.${k}` : k)).join('');
      throw new BackendError(`${what}: ${where || 'a value'} is ${v}; nothing was written (JSON has no NaN or Infinity)`,
        'the computation overflowed or the weights hold extreme values; check the model and SAE weights, or run with --backend tfjs');
    }
    if (typeof v === 'object' && v !== null) { parents.push(v); path.push(key); }
    return v;
  });
}
