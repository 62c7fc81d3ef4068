// A node of the lazy expression DAG behind every tensor of this backend. A node is either
// concrete (holds its values) or pending (an op over input nodes, computed when someone needs
// its values). Shapes are always known eagerly, so TensorOps stays synchronous.

import type { DType } from '@sfc/core';

export type Values = Float32Array | Int32Array;

/**
 * A run-time value an op needs besides its tensor inputs: a scalar factor, a target shape, slice
 * bounds. Fed as a graph input, so graphs that differ only in these reuse one session.
 */
export interface NodeFeed {
  readonly elem: 'float32' | 'int32' | 'int64';
  readonly dims: readonly number[];
  readonly data: readonly number[];
}

let nextId = 0;

export class LazyNode {
  /** Creation order; inputs always have smaller ids, so sorting by id is a topological order. */
  readonly id = nextId++;
  /** Live handles (Tensor objects) on this node. */
  handles = 0;
  /** Why the last attempt to compute this node failed (cleared when it is requested again). */
  failure?: unknown;

  constructor(
    readonly op: string,
    /** Cleared once the node is concrete, so inputs can be garbage-collected. */
    public inputs: readonly LazyNode[],
    /** Shape-independent attributes (part of the graph's structure key). */
    readonly attrs: Readonly<Record<string, unknown>>,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly feeds: readonly NodeFeed[] = [],
    public value?: Values,
    /** Not a tensor of its own (e.g. TopK, whose two outputs are `select` nodes). */
    readonly internal = false,
  ) {}

  get concrete(): boolean {
    return this.value !== undefined;
  }

  /** Becomes concrete; drops the inputs it no longer needs. */
  resolve(values: Values): void {
    this.value = values;
    this.inputs = [];
  }

  /** A node that already has its values. */
  static of(values: Values, shape: readonly number[], dtype: DType): LazyNode {
    return new LazyNode('const', [], {}, shape, dtype, [], values);
  }
}
