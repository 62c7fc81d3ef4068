// Numbers for people: x.toFixed(d), except that a value which rounds to zero prints without a
// minus sign (`0.00`, never `-0.00`).

export function fixed(x: number, digits: number): string {
  const s = x.toFixed(digits);
  return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
}
