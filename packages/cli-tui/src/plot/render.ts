// DOT → SVG with the WebAssembly build of Graphviz (@viz-js/viz): no system Graphviz needed; the
// SVG names the plot font (font.ts).

import { BackendError } from '@sfc/core';
import { withPlotFont } from './font.js';

let viz: Promise<{ renderString(dot: string, options: { format: string }): string }> | undefined;

export async function renderSvg(dot: string): Promise<string> {
  viz ??= import('@viz-js/viz').then((m) => m.instance());
  try {
    return withPlotFont((await viz).renderString(dot, { format: 'svg' }));
  } catch (e) {
    throw new BackendError(`Graphviz could not lay out the circuit: ${(e as Error).message}`, 'write the DOT text with --out circuit.dot to inspect it', { cause: e });
  }
}
