// The plots' font: Inter (SIL Open Font License 1.1, from the @expo-google-fonts/inter package,
// which ships the TTF files resvg needs). Graphviz lays labels out with Helvetica metrics (a
// sans-serif of similar width); the SVG names Inter first, and the PNG is rasterized with the
// shipped Inter files only, so no system font is needed and every machine draws the same text.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export const PLOT_FONT_FAMILY = 'Inter';
/** What the SVG asks for: Inter, else the sans-serif Graphviz measured with. */
export const SVG_FONT_FAMILY = 'Inter, Helvetica, Arial, sans-serif';

/** The TTF files of the plot font (regular and bold). */
export function plotFontFiles(): string[] {
  const dir = dirname(createRequire(import.meta.url).resolve('@expo-google-fonts/inter/package.json'));
  return [join(dir, '400Regular', 'Inter_400Regular.ttf'), join(dir, '700Bold', 'Inter_700Bold.ttf')];
}

/** Graphviz's SVG with the plot font named in every font-family. */
export function withPlotFont(svg: string): string {
  return svg.replace(/font-family="[^"]*"/g, `font-family="${SVG_FONT_FAMILY}"`);
}

/**
 * The SVG with the regular Inter face embedded (an @font-face data URL, ~460 KB), so viewers that
 * honour @font-face draw the same font as the PNG without Inter installed.
 */
export function withEmbeddedFont(svg: string): string {
  const ttf = readFileSync(plotFontFiles()[0]!).toString('base64');
  const style = `<defs><style>@font-face { font-family: "${PLOT_FONT_FAMILY}"; src: url(data:font/ttf;base64,${ttf}) format("truetype"); }</style></defs>`;
  return svg.replace(/(<svg\b[^>]*>)/, `$1\n${style}`);
}
