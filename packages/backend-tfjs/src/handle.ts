// The tensor handle sfc code sees: a thin wrapper around a tf.Tensor, so core's Tensor type
// never carries tfjs types and a tensor from another backend is recognised and refused.

import type * as tf from '@tensorflow/tfjs';
import { InputError, type DType, type Shape, type Tensor, type TensorContainer } from '@sfc/core';

export class TfTensor implements Tensor {
  constructor(
    readonly t: tf.Tensor,
    /** cpu (and tfjs-node) hand out their own storage on read; copy so callers can never corrupt a tensor. */
    private readonly copyOnRead: boolean,
  ) {}

  get shape(): Shape {
    return this.t.shape;
  }

  get dtype(): DType {
    return this.t.dtype === 'int32' ? 'int32' : 'float32';
  }

  get isDisposed(): boolean {
    return this.t.isDisposed;
  }

  async data(): Promise<Float32Array | Int32Array> {
    if (this.t.isDisposed) throw new InputError('data() of a disposed tensor', 'keep the tensor alive (return it from the scope) until you read it');
    const v = (await this.t.data()) as Float32Array | Int32Array;
    return this.copyOnRead ? v.slice() : v;
  }

  dispose(): void {
    this.t.dispose();
  }
}

/** The tf.Tensor behind a handle; refuses foreign and disposed tensors with a typed error. */
export function unwrap(t: Tensor, what: string): tf.Tensor {
  if (!(t instanceof TfTensor)) {
    throw new InputError(`${what}: the tensor does not belong to a tfjs backend`, 'create tensors with the ops of the backend that runs the model');
  }
  if (t.t.isDisposed) {
    throw new InputError(`${what}: the tensor was already disposed`, 'keep tensors alive (return them from ops.scope) while they are still used');
  }
  return t.t;
}

/** Every tf.Tensor reachable from a scope result (handles, arrays, plain objects, Maps). */
export function tensorsIn(c: TensorContainer, out: tf.Tensor[] = []): tf.Tensor[] {
  if (c === null || c === undefined || typeof c !== 'object') return out;
  if (c instanceof TfTensor) { out.push(c.t); return out; }
  if (c instanceof Map) { for (const v of c.values()) tensorsIn(v, out); return out; }
  if (Array.isArray(c)) { for (const v of c) tensorsIn(v, out); return out; }
  for (const v of Object.values(c as Record<string, TensorContainer>)) tensorsIn(v, out);
  return out;
}
