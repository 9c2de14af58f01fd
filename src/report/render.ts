import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import * as vl from 'vega-lite';

/**
 * A Vega-Lite specification (the chart grammar the reports are written in).
 *
 * @example
 * ```ts
 * const spec: ChartSpec = { data: { values: rows }, mark: 'bar', encoding: { x: { field: 'policy' }, y: { field: 'ms', type: 'quantitative' } } };
 * ```
 */
export type ChartSpec = vl.TopLevelSpec;

/**
 * Renders a Vega-Lite chart to SVG without a browser: Vega-Lite compiles to Vega, a headless Vega view renders the
 * scene graph to an SVG string.
 *
 * @example
 * ```ts
 * const svg = await renderSvg({ data: { values: [{ x: 1, y: 2 }] }, mark: 'point', encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } } });
 * ```
 */
export async function renderSvg(spec: ChartSpec): Promise<string> {
  const compiled = vl.compile({ config: { font: 'DejaVu Sans' }, ...spec } as ChartSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * Rasterizes an SVG to PNG with resvg (system fonts, DejaVu Sans as the default family).
 *
 * @example
 * ```ts
 * await writeFile('chart.png', renderPng(svg, 1200));
 * ```
 */
export function renderPng(svg: string, width = 1200): Uint8Array {
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'width', value: width },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  });
  return resvg.render().asPng();
}
