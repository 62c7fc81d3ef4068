// JSON text for float32 data: the shortest decimal that reads back as the same float32 (so
// files stay small and exact), emitted in chunks so large arrays are never one giant string.

/** Shortest decimal string that parses back to the same float32; `null` for NaN/±Infinity (JSON has none). */
export function formatFloat32(v: number): string {
  if (!Number.isFinite(v)) return 'null';
  if (v === 0) return '0';
  const f = Math.fround(v);
  // Trailing zeros vanish in String(Number(...)), so precision 6 also covers shorter values.
  for (let p = 6; p < 9; p++) {
    const s = String(Number(f.toPrecision(p)));
    if (Math.fround(Number(s)) === f) return s;
  }
  return String(Number(f.toPrecision(9)));
}

export function float32Array(data: ArrayLike<number>, begin = 0, end = data.length): string {
  const parts = new Array<string>(end - begin);
  for (let i = begin; i < end; i++) parts[i - begin] = formatFloat32(data[i]!);
  return `[${parts.join(',')}]`;
}

/** `[[row 0],[row 1],…]` for a row-major [rows, cols] buffer, one chunk per row. */
export function* float32Rows(data: ArrayLike<number>, rows: number, cols: number): Generator<string> {
  yield '[';
  for (let r = 0; r < rows; r++) yield (r ? ',\n' : '\n') + float32Array(data, r * cols, (r + 1) * cols);
  yield '\n]';
}
