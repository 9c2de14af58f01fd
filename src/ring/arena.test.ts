import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ResourceError } from '../util/errors.ts';
import { ArenaAllocator } from './arena.ts';
import { PAGE_BYTES } from './kernels.ts';

const WORDS_PER_PAGE = PAGE_BYTES / 4;

function allocator(maximumPages: number) {
  const memory = new WebAssembly.Memory({ initial: 2, maximum: maximumPages });
  return { memory, arena: new ArenaAllocator(memory, maximumPages) };
}

describe('ArenaAllocator: freed blocks of other sizes are reused before the memory grows', () => {
  it('merges neighbouring free blocks for a larger request, without growing', () => {
    const { memory, arena } = allocator(64);
    const small = Array.from({ length: 8 }, () => arena.alloc(WORDS_PER_PAGE));
    const grown = memory.buffer.byteLength;
    for (const p of small) arena.free(p, WORDS_PER_PAGE);
    // Eight freed pages in a row make one block of eight: a four-page request fits in it.
    const big = arena.alloc(4 * WORDS_PER_PAGE);
    assert.ok(small.includes(big), 'placed where the small blocks were');
    assert.equal(memory.buffer.byteLength, grown, 'no growth');
    assert.equal(arena.bytesInUse, 4 * PAGE_BYTES);
  });

  it('a large block (≥ 1 MiB) takes a freed hole before fresh pages at the top, a small one bumps', () => {
    const { memory, arena } = allocator(512);
    const mib = 2 ** 20 / 4;
    const a = arena.alloc(2 * mib);
    const b = arena.alloc(2 * mib);
    memory.grow(64); // fresh room at the top
    arena.free(a, 2 * mib);
    const c = arena.alloc(1.5 * mib);
    assert.equal(c, a, 'the 1.5 MiB block goes into the freed 2 MiB hole');
    const small = arena.alloc(1024);
    assert.ok(small > b, 'a small block is bumped, not split from the hole');
    const d = arena.alloc(0.5 * mib);
    assert.equal(d, a + 1.5 * 2 ** 20, 'the rest of the hole serves a block of its size');
  });

  it('at the memory limit, a request of a new size splits a freed block instead of failing', () => {
    const { arena } = allocator(20);
    const blocks: number[] = [];
    for (;;) {
      try {
        blocks.push(arena.alloc(3 * WORDS_PER_PAGE));
      } catch (error) {
        assert.ok(error instanceof ResourceError);
        break;
      }
    }
    assert.ok(blocks.length >= 4);
    // Free every other block: no two free blocks touch, so only a split serves a smaller size.
    for (let i = 0; i < blocks.length; i += 2) arena.free(blocks[i], 3 * WORDS_PER_PAGE);
    const a = arena.alloc(2 * WORDS_PER_PAGE);
    const b = arena.alloc(WORDS_PER_PAGE);
    assert.equal(b, a + 2 * PAGE_BYTES, 'the rest of the split block serves the next request');
    // A request larger than any free block still fails with the typed error.
    assert.throws(() => arena.alloc(4 * WORDS_PER_PAGE), ResourceError);
  });

  it('random allocations and frees of many sizes never overlap and stay within the limit', () => {
    const maximumPages = 48;
    const { memory, arena } = allocator(maximumPages);
    const live = new Map<number, number>();
    let state = 12345;
    const next = () => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state / 2 ** 31;
    };
    let refusals = 0;
    for (let round = 0; round < 3000; round++) {
      if (live.size > 0 && next() < 0.45) {
        const pointers = [...live.keys()];
        const p = pointers[Math.floor(next() * pointers.length)];
        arena.free(p, live.get(p)!);
        live.delete(p);
        continue;
      }
      const words = 4 * (1 + Math.floor(next() * 20_000));
      try {
        live.set(arena.alloc(words), words);
      } catch (error) {
        assert.ok(error instanceof ResourceError);
        refusals++;
      }
      const spans = [...live].map(([p, w]) => [p, p + w * 4] as const).sort((x, y) => x[0] - y[0]);
      for (let i = 1; i < spans.length; i++) assert.ok(spans[i - 1][1] <= spans[i][0], 'no overlap');
    }
    assert.ok(memory.buffer.byteLength <= maximumPages * PAGE_BYTES);
    let inUse = 0;
    for (const w of live.values()) inUse += Math.ceil((w * 4) / 16) * 16;
    assert.equal(arena.bytesInUse, inUse);
    assert.ok(refusals < 300, `${refusals} refusals`);
  });
});
