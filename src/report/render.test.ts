import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderPng, renderSvg } from './render.ts';

test('a Vega-Lite chart renders to SVG and PNG without a browser', async () => {
  const svg = await renderSvg({
    title: 'bytes per tier',
    data: {
      values: [
        { tier: 'dram', MB: 3 },
        { tier: 'nvme', MB: 7 },
      ],
    },
    mark: 'bar',
    encoding: { x: { field: 'tier', type: 'nominal' }, y: { field: 'MB', type: 'quantitative' } },
  });
  assert.match(svg, /^<svg/);
  assert.match(svg, /bytes per tier/);
  const png = renderPng(svg, 400);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
});
