// A row-major matrix transposed (weights as stored ↔ canonical layouts; model/weights.ts,
// model/half-weights.ts).

/** [rows, cols] → [cols, rows]. */
export function transpose<A extends Float32Array | Uint16Array>(a: A, rows: number, cols: number): A {
  const out = (a instanceof Float32Array ? new Float32Array(a.length) : new Uint16Array(a.length)) as A;
  const B = 32; // blocked for cache locality on big matrices
  for (let i0 = 0; i0 < rows; i0 += B) {
    const i1 = Math.min(rows, i0 + B);
    for (let j0 = 0; j0 < cols; j0 += B) {
      const j1 = Math.min(cols, j0 + B);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) out[j * rows + i] = a[i * cols + j]!;
    }
  }
  return out;
}
