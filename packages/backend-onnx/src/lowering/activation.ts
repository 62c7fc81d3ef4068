// Element-wise activations with their derivatives, and the ops built from them:
// gelu (exact, erf):  y = x·Φ(x),                       y' = Φ(x) + x·φ(x)
// gelu_new (tanh):    y = ½x(1 + tanh u), u = c(x + a·x³), y' = ½(1 + t) + ½x(1 − t²)·c(1 + 3a·x²)
//                     (also Gemma's gelu_pytorch_tanh: the same function)
// relu:               y = max(x, 0),                    y' = 1[x > 0]
// silu:               y = x·σ(x),                       y' = σ(x)·(1 + x·(1 − σ(x)))
// An activation is an op by itself (`activationOp`, classic MLPs) or the gate of a gated MLP
// (`gatedActivation`: act(gate)·up, Llama and Gemma); `softCap` is Gemma 2's cap·tanh(x / cap).

import type { Activation } from '@sfc/core';
import type { GraphBuilder } from '../onnx-graph.js';
import type { OpLowering } from './op.js';

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const TANH_C = Math.sqrt(2 / Math.PI);
const TANH_A = 0.044715;

/** An activation's value and derivative at x, as graph nodes. */
interface ActivationMath {
  apply(g: GraphBuilder, x: string): string;
  derivative(g: GraphBuilder, x: string): string;
}

const GELU: ActivationMath = {
  apply: (g, x) => g.node('Gelu', [x], { approximate: 'none' }),
  derivative(g, x) {
    const cdf = g.node('Mul', [g.node('Add', [g.node('Erf', [g.node('Mul', [x, g.constF(SQRT1_2)])]), g.constF(1)]), g.constF(0.5)]);
    const pdf = g.node('Mul', [g.node('Exp', [g.node('Mul', [g.node('Mul', [x, x]), g.constF(-0.5)])]), g.constF(INV_SQRT_2PI)]);
    return g.node('Add', [cdf, g.node('Mul', [x, pdf])]);
  },
};

const GELU_TANH: ActivationMath = {
  apply: (g, x) => g.node('Gelu', [x], { approximate: 'tanh' }),
  derivative(g, x) {
    const x2 = g.node('Mul', [x, x]);
    const u = g.node('Mul', [g.node('Add', [x, g.node('Mul', [g.node('Mul', [x2, x]), g.constF(TANH_A)])]), g.constF(TANH_C)]);
    const t = g.node('Tanh', [u]);
    const half = g.constF(0.5);
    const left = g.node('Mul', [g.node('Add', [t, g.constF(1)]), half]);
    const sech2 = g.node('Sub', [g.constF(1), g.node('Mul', [t, t])]);
    const du = g.node('Mul', [g.node('Add', [g.node('Mul', [x2, g.constF(3 * TANH_A)]), g.constF(1)]), g.constF(TANH_C)]);
    const right = g.node('Mul', [g.node('Mul', [g.node('Mul', [x, half]), sech2]), du]);
    return g.node('Add', [left, right]);
  },
};

const RELU: ActivationMath = {
  apply: (g, x) => g.node('Relu', [x]),
  derivative: (g, x) => g.node('Cast', [g.node('Greater', [x, g.constF(0)])], { to: 1 }),
};

const SILU: ActivationMath = {
  apply: (g, x) => g.node('Mul', [x, g.node('Sigmoid', [x])]),
  derivative(g, x) {
    const s = g.node('Sigmoid', [x]);
    return g.node('Mul', [s, g.node('Add', [g.constF(1), g.node('Mul', [x, g.node('Sub', [g.constF(1), s])])])]);
  },
};

/** Activation names as config.json spells them (transformers' ACT2FN keys sfc implements). */
const MATH: Readonly<Record<string, ActivationMath>> = {
  gelu: GELU, gelu_new: GELU_TANH, gelu_pytorch_tanh: GELU_TANH, relu: RELU, silu: SILU,
};

function math(a: string): ActivationMath {
  const m = MATH[a];
  if (!m) throw new Error(`internal: the onnx backend has no lowering for activation '${a}'`);
  return m;
}

function elementwise(name: string, m: ActivationMath): OpLowering<void> {
  return {
    name,
    forward: (g, [x]) => ({ outputs: [m.apply(g, x!)] }),
    vjp: (g, { inputs: [x] }, [dy]) => [g.node('Mul', [dy!, m.derivative(g, x!)])],
  };
}

export const gelu = elementwise('gelu', GELU);
export const geluTanh = elementwise('gelu_new', GELU_TANH);
export const silu = elementwise('silu', SILU);

/** relu's VJP selects instead of multiplying by a 0/1 mask (one node fewer). */
export const relu: OpLowering<void> = {
  name: 'relu',
  forward: (g, [x]) => ({ outputs: [RELU.apply(g, x!)] }),
  vjp: (g, { inputs: [x] }, [dy]) => [g.node('Where', [g.node('Greater', [x!, g.constF(0)]), dy!, g.constF(0)])],
};

const BY_NAME = new Map<string, OpLowering<void>>([['gelu', gelu], ['gelu_new', geluTanh], ['relu', relu], ['silu', silu]]);

export function activationOp(a: Activation): OpLowering<void> {
  const op = BY_NAME.get(a) ?? elementwise(a, math(a));
  BY_NAME.set(a, op);
  return op;
}

export interface GatedAttrs { readonly activation: string }

/**
 * inputs: gate, up [..., m] → act(gate)·up (the inner product of a gated MLP, before `down`).
 * VJP: dgate = dy·up·act'(gate), dup = dy·act(gate).
 */
export const gatedActivation: OpLowering<GatedAttrs> = {
  name: 'gatedActivation',
  forward(g, [gate, up], { activation }) {
    const a = math(activation).apply(g, gate!);
    return { outputs: [g.node('Mul', [a, up!])], saved: { a } };
  },
  vjp(g, { inputs: [gate, up], saved: { a }, attrs: { activation }, needs }, [dy]) {
    const dGate = needs[0] ? g.node('Mul', [g.node('Mul', [dy!, up!]), math(activation).derivative(g, gate!)]) : undefined;
    const dUp = needs[1] ? g.node('Mul', [dy!, a!]) : undefined;
    return [dGate, dUp];
  },
};

export interface SoftCapAttrs { readonly cap: number }

/** cap·tanh(x / cap) as transformers computes it (divide, tanh, multiply); derivative 1 − tanh². */
export function softCapForward(g: GraphBuilder, x: string, cap: number): { y: string; t: string } {
  const t = g.node('Tanh', [g.node('Div', [x, g.constF(cap)])]);
  return { y: g.node('Mul', [t, g.constF(cap)]), t };
}

/** The cotangent of x from that of cap·tanh(x / cap), given t = tanh(x / cap). */
export function softCapVjp(g: GraphBuilder, t: string, dy: string): string {
  return g.node('Mul', [dy, g.node('Sub', [g.constF(1), g.node('Mul', [t, t])])]);
}

/** inputs: x → cap·tanh(x / cap) (Gemma 2's final logit soft-capping). */
export const softCap: OpLowering<SoftCapAttrs> = {
  name: 'softCap',
  forward(g, [x], { cap }) {
    const { y, t } = softCapForward(g, x!, cap);
    return { outputs: [y], saved: { t } };
  },
  vjp(g, { saved: { t } }, [dy]) {
    return [softCapVjp(g, t!, dy!)];
  },
};
