import { describe, expect, it } from 'vitest';
import { CapabilityError, InputError } from '@sfc/core';
import { circuitToDot } from './dot.js';
import { renderPng, setRasterizerLoader } from './raster.js';
import { existsSync } from 'node:fs';
import { plotFontFiles, SVG_FONT_FAMILY, withEmbeddedFont } from './font.js';
import { renderSvg } from './render.js';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Width and height from the IHDR chunk (bytes 16–23, big-endian). */
function pngSize(png: Uint8Array): { width: number; height: number } {
  const v = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return { width: v.getUint32(16), height: v.getUint32(20) };
}

const page = (body: string) => `<svg xmlns="http://www.w3.org/2000/svg" width="120" height="30" viewBox="0 0 120 30">${body}</svg>`;
const SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="30pt" height="15pt" viewBox="0 0 30 15"><rect width="30" height="15" fill="#0000ff"/></svg>';

describe('SVG → PNG', () => {
  it('writes a PNG whose size is the SVG size (pt → px at 96 dpi) times --scale', async () => {
    for (const scale of [1, 2, 3]) {
      const img = await renderPng(SVG, { scale });
      expect([...img.png.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
      expect(String.fromCharCode(...img.png.subarray(12, 16))).toBe('IHDR');
      expect(pngSize(img.png)).toEqual({ width: 40 * scale, height: 20 * scale });
      expect(img).toMatchObject({ width: 40 * scale, height: 20 * scale });
    }
  });

  it('draws text with the shipped Inter font, whatever fonts the system has', async () => {
    const blank = (await renderPng(page(''), { scale: 1 })).png;
    for (const family of [SVG_FONT_FAMILY, 'Helvetica,sans-Serif', 'NoSuchFont']) {
      const text = (await renderPng(page(`<text x="4" y="20" font-family="${family}" font-size="14">resid_2/33</text>`), { scale: 1 })).png;
      expect(Buffer.from(text).equals(Buffer.from(blank)), family).toBe(false); // glyphs were drawn
    }
    expect(plotFontFiles().every((f) => existsSync(f) && f.endsWith('.ttf'))).toBe(true);
  });

  it('embeds the font in an SVG on request, and the SVG still renders', async () => {
    const svg = withEmbeddedFont(page(`<text x="4" y="20" font-family="${SVG_FONT_FAMILY}" font-size="14">resid_2/33</text>`));
    expect(svg).toMatch(/^<svg[^>]*>\n<defs><style>@font-face \{ font-family: "Inter"; src: url\(data:font\/ttf;base64,AAEAAA/);
    expect((await renderPng(svg, { scale: 1 })).width).toBe(120);
  });

  it('rasterizes a Graphviz circuit drawing', async () => {
    const svg = await renderSvg(circuitToDot({ nodes: [
      { id: 'y', submodule: 'y', index: null, pos: null, effect: 1 },
      { id: 'resid_0/7', submodule: 'resid_0', index: 7, pos: null, effect: -1 },
    ], edges: [{ source: 'resid_0/7', target: 'y', weight: 1 }] }).dot);
    const pt = /<svg width="([\d.]+)pt" height="([\d.]+)pt"/.exec(svg)!;
    const img = await renderPng(svg, { scale: 2 });
    expect(Math.abs(img.width - Number(pt[1]) * 8 / 3)).toBeLessThanOrEqual(1);
    expect(Math.abs(img.height - Number(pt[2]) * 8 / 3)).toBeLessThanOrEqual(1);
    expect(img.width).toBeGreaterThan(50);
    expect(img.height).toBeGreaterThan(100);
  });

  it('rejects a bad scale and images too large to allocate', async () => {
    await expect(renderPng(SVG, { scale: 0 })).rejects.toThrow(InputError);
    await expect(renderPng(SVG, { scale: Number.NaN })).rejects.toThrow(/--scale must be a positive number/);
    await expect(renderPng(SVG, { scale: 1000 })).rejects.toThrow(/40000×20000 pixels/);
  });

  it('gives a CapabilityError naming SVG when the native module cannot load', async () => {
    setRasterizerLoader(() => Promise.reject(new Error('Cannot find module @resvg/resvg-js-linux-x64-gnu')));
    try {
      const e = await renderPng(SVG).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(CapabilityError);
      expect((e as CapabilityError).message).toMatch(/cannot load the PNG rasterizer @resvg\/resvg-js.*linux-x64-gnu/);
      expect((e as CapabilityError).hint).toMatch(/--out circuit\.svg/);
    } finally {
      setRasterizerLoader(undefined);
    }
    expect((await renderPng(SVG)).width).toBe(80);
  });
});
