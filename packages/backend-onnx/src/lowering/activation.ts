// Element-wise MLP activations with their derivatives:
// gelu (exact, erf):  y = x·Φ(x),                       y' = Φ(x) + x·φ(x)
// gelu_new (tanh):    y = ½x(1 + tanh u), u = c(x + a·x³), y' = ½(1 + t) + ½x(1 − t²)·c(1 + 3a·x²)
// relu:               y = max(x, 0),                    y' = 1[x > 0]

import type { Activation } from '@sfc/core';
import type { OpLowering } from './op.js';

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const TANH_C = Math.sqrt(2 / Math.PI);
const TANH_A = 0.044715;

export const gelu: OpLowering<void> = {
  name: 'gelu',
  forward(g, [x]) {
    return { outputs: [g.node('Gelu', [x!], { approximate: 'none' })] };
  },
  vjp(g, { inputs: [x] }, [dy]) {
    const cdf = g.node('Mul', [g.node('Add', [g.node('Erf', [g.node('Mul', [x!, g.constF(SQRT1_2)])]), g.constF(1)]), g.constF(0.5)]);
    const pdf = g.node('Mul', [g.node('Exp', [g.node('Mul', [g.node('Mul', [x!, x!]), g.constF(-0.5)])]), g.constF(INV_SQRT_2PI)]);
    const d = g.node('Add', [cdf, g.node('Mul', [x!, pdf])]);
    return [g.node('Mul', [dy!, d])];
  },
};

export const geluTanh: OpLowering<void> = {
  name: 'gelu_new',
  forward(g, [x]) {
    return { outputs: [g.node('Gelu', [x!], { approximate: 'tanh' })] };
  },
  vjp(g, { inputs: [x] }, [dy]) {
    const x2 = g.node('Mul', [x!, x!]);
    const u = g.node('Mul', [g.node('Add', [x!, g.node('Mul', [g.node('Mul', [x2, x!]), g.constF(TANH_A)])]), g.constF(TANH_C)]);
    const t = g.node('Tanh', [u]);
    const half = g.constF(0.5);
    const left = g.node('Mul', [g.node('Add', [t, g.constF(1)]), half]);
    const sech2 = g.node('Sub', [g.constF(1), g.node('Mul', [t, t])]);
    const du = g.node('Mul', [g.node('Add', [g.node('Mul', [x2, g.constF(3 * TANH_A)]), g.constF(1)]), g.constF(TANH_C)]);
    const right = g.node('Mul', [g.node('Mul', [g.node('Mul', [x!, half]), sech2]), du]);
    return [g.node('Mul', [dy!, g.node('Add', [left, right])])];
  },
};

export const relu: OpLowering<void> = {
  name: 'relu',
  forward(g, [x]) {
    return { outputs: [g.node('Relu', [x!])] };
  },
  vjp(g, { inputs: [x] }, [dy]) {
    return [g.node('Where', [g.node('Greater', [x!, g.constF(0)]), dy!, g.constF(0)])];
  },
};

export function activationOp(a: Activation): OpLowering<void> {
  switch (a) {
    case 'gelu': return gelu;
    case 'gelu_new': return geluTanh;
    case 'relu': return relu;
  }
}
