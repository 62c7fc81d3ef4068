// SVG → PNG with resvg (@resvg/resvg-js, a prebuilt native module per platform). Loaded on first
// use only, so commands that never write a PNG do not pay for it, and a platform without a
// prebuilt binary fails with a CapabilityError pointing at SVG, which needs no native code.

import { BackendError, CapabilityError, InputError } from '@sfc/core';
import { PLOT_FONT_FAMILY, plotFontFiles } from './font.js';

export interface PngOptions {
  /** Output pixels per SVG pixel (1 = 96 dpi; Graphviz's 1 pt is 4/3 px). Default 2. */
  readonly scale?: number;
}

export interface Png {
  readonly png: Uint8Array;
  readonly width: number;
  readonly height: number;
}

/** Largest side in pixels we ask resvg for: beyond this the image (4 bytes a pixel) gets unwieldy. */
export const MAX_PNG_SIDE = 16384;

type ResvgModule = typeof import('@resvg/resvg-js');
let resvg: Promise<ResvgModule> | undefined;

const defaultLoader = () => import('@resvg/resvg-js');
let loader: () => Promise<ResvgModule> = defaultLoader;

/** Overridable module loader (tests use it to simulate a platform without the native binary). */
export function setRasterizerLoader(load: (() => Promise<ResvgModule>) | undefined): void {
  loader = load ?? defaultLoader;
  resvg = undefined;
}

async function loadResvg(): Promise<ResvgModule> {
  resvg ??= loader().catch((e: unknown) => {
    resvg = undefined;
    throw new CapabilityError(
      `cannot load the PNG rasterizer @resvg/resvg-js on ${process.platform}-${process.arch}: ${(e as Error).message}`,
      'write SVG instead (--out circuit.svg), which needs no native module, and convert it with any SVG viewer; or reinstall so npm fetches the @resvg/resvg-js binary for this platform',
      { cause: e });
  });
  return resvg;
}

export async function renderPng(svg: string, options: PngOptions = {}): Promise<Png> {
  const scale = options.scale ?? 2;
  if (!Number.isFinite(scale) || scale <= 0) throw new InputError(`--scale must be a positive number, got ${String(scale)}`);
  const { Resvg } = await loadResvg();
  let r: InstanceType<ResvgModule['Resvg']>;
  try {
    // Opaque white background: Graphviz draws on white, and transparent PNGs show black in some viewers.
    // The shipped font only: the PNG looks the same on every machine, with or without system fonts.
    r = new Resvg(svg, {
      fitTo: { mode: 'zoom', value: scale }, background: 'white',
      font: { loadSystemFonts: false, fontFiles: plotFontFiles(), defaultFontFamily: PLOT_FONT_FAMILY, sansSerifFamily: PLOT_FONT_FAMILY },
    });
  } catch (e) {
    throw new BackendError(`resvg could not read the SVG: ${(e as Error).message}`, 'write the SVG with --out circuit.svg to inspect it', { cause: e });
  }
  const w = Math.ceil(r.width * scale), h = Math.ceil(r.height * scale);
  if (w > MAX_PNG_SIDE || h > MAX_PNG_SIDE) {
    throw new InputError(`the PNG would be ${w}×${h} pixels (more than ${MAX_PNG_SIDE} on a side)`, 'lower --scale, or write SVG (--out circuit.svg), which scales without limit');
  }
  try {
    const img = r.render();
    return { png: img.asPng(), width: img.width, height: img.height };
  } catch (e) {
    throw new BackendError(`resvg could not rasterize the circuit: ${(e as Error).message}`, 'write SVG instead (--out circuit.svg)', { cause: e });
  }
}
