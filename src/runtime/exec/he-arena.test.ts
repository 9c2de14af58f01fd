import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SwitchingKey } from '../../ckks/keys.ts';
import { Ciphertext } from '../../ckks/objects.ts';
import { PRESETS } from '../../ckks/parameters.ts';
import { testContext } from '../../../tests/support/ckks-context.ts';
import { Poly } from '../../ring/poly.ts';
import { gatherBytes, type ScatterBytes, scatterBytes, scatterBytesLength } from '../store/slow-tier.ts';
import { HeArena, storedHeView, writeHeObject } from './he-arena.ts';
import { PlacementAllocator } from './placement-allocator.ts';

const ctx = testContext(PRESETS.PN13QP218, { rotations: [1] });
const key = ctx.evaluationKeys.galois.values().next().value!.key as SwitchingKey;

function wordsOf(polys: Poly[]): number[] {
  return polys.flatMap((p) => Array.from(p.words()));
}

test('placement: pieces lie back to back in one region, which returns to the base allocator with its last piece', () => {
  const placement = PlacementAllocator.install(ctx.params.context);
  try {
    const moduli = ctx.params.moduliAtLevel(1);
    const words = moduli.length * ctx.params.n;
    const { value, pointer } = placement.placed(2 * words, () => [
      Poly.alloc(moduli, true, false),
      Poly.alloc(moduli, true, false),
    ]);
    assert.equal(value[0].pointer, pointer);
    assert.equal(value[1].pointer, pointer + words * 4);
    assert.equal(placement.livePieces, 2);
    assert.throws(() => placement.uninstall(), /still alive/);
    value[0].dispose();
    assert.ok(placement.placedBytes > 0, 'region kept while a piece lives');
    value[1].dispose();
    assert.equal(placement.placedBytes, 0);
    assert.throws(
      () => placement.placed(words, () => []),
      /allocated 0 bytes: expected exactly/,
      'an underrun is an error',
    );
  } finally {
    placement.uninstall();
  }
});

test('arena: a ciphertext survives byte form → live (placed) → byte form, with its level and scale', () => {
  const placement = PlacementAllocator.install(ctx.params.context);
  const arena = new HeArena(ctx.params, placement);
  try {
    const ct = ctx.encrypt([0.5, -0.25, 0.125], 1);
    const bytes = ct.byteLength;
    arena.adopt('ct:1', ct.copy(), bytes);
    const form = new Uint8Array(bytes);
    arena.toBytes('ct:1', form);
    arena.drop('ct:1');
    assert.equal(arena.has('ct:1'), false);
    arena.fromBytes('ct:1', form);
    const back = arena.get('ct:1') as Ciphertext;
    assert.ok(back instanceof Ciphertext);
    assert.equal(back.level, ct.level);
    assert.equal(back.scale, ct.scale);
    assert.deepEqual(wordsOf(back.polys), wordsOf(ct.polys));
    const view = arena.byteView('ct:1');
    assert.ok(view instanceof Uint8Array, 'objects made from bytes are contiguous');
    assert.deepEqual(Array.from(view), Array.from(form));
    assert.equal(arena.bytesInUse, bytes);
    arena.drop('ct:1');
    ct.dispose();
  } finally {
    arena.clear();
    placement.uninstall();
  }
});

/** What a slow-tier read does: `bytes` into the target's pieces, back to back. */
function fill(target: ScatterBytes, bytes: Uint8Array): void {
  assert.equal(scatterBytesLength(target), bytes.byteLength);
  scatterBytes(bytes, target);
}

test('arena, seeded keys: the slow-tier form is the b halves and the seed; loading regenerates every a_j exactly', () => {
  const placement = PlacementAllocator.install(ctx.params.context);
  const arena = new HeArena(ctx.params, placement, { seededKeys: true });
  try {
    const full = key.byteLength;
    arena.describeFrom('key:galois:g', key, full);
    assert.equal(arena.storedBytes('key:galois:g'), full / 2 + 32);
    const stored = new Uint8Array(arena.storedBytes('key:galois:g'));
    assert.equal(writeHeObject(key, stored, { seeded: true }), stored.length);
    // A slow-tier read straight into kernel memory — a key into its polynomials and a seed slot, not one region —
    // then the a halves from the seed.
    const target = arena.loadTarget('key:galois:g');
    assert.ok(Array.isArray(target), 'a key is read in pieces');
    assert.equal(target.length, key.digits.length + 1, 'its b halves, then the seed');
    assert.equal(target.at(-1)!.byteLength, 32);
    fill(target, stored);
    arena.completeLoad('key:galois:g', target);
    const loaded = arena.get('key:galois:g') as SwitchingKey;
    assert.equal(loaded.digits.length, key.digits.length);
    for (let j = 0; j < key.digits.length; j++) {
      assert.deepEqual(Array.from(loaded.digits[j].b.words()), Array.from(key.digits[j].b.words()));
      assert.deepEqual(Array.from(loaded.digits[j].a.words()), Array.from(key.digits[j].a.words()));
    }
    // The same into a DRAM buffer: the stored form expands in place to the byte form.
    const buffer = new Uint8Array(full);
    buffer.set(stored);
    arena.expandStored('key:galois:g', buffer);
    const expected = new Uint8Array(full);
    writeHeObject(key, expected);
    assert.deepEqual(buffer, expected);
    // A tampered seed is caught.
    arena.drop('key:galois:g');
    const before = ctx.params.context.allocator.bytesInUse;
    const bad = arena.loadTarget('key:galois:g');
    const tampered = stored.slice();
    tampered[full / 2] ^= 1;
    fill(bad, tampered);
    assert.throws(() => arena.completeLoad('key:galois:g', bad), /seed differs/);
    assert.equal(
      ctx.params.context.allocator.bytesInUse,
      before,
      'a refused load frees its pieces and seed slot',
    );
    // An aborted read gives its memory back too.
    arena.abortLoad('key:galois:g');
    arena.loadTarget('key:galois:g');
    arena.abortLoad('key:galois:g');
    assert.equal(ctx.params.context.allocator.bytesInUse, before);
  } finally {
    arena.clear();
    placement.uninstall();
  }
});

test('arena: a declared size that differs from the object is refused, naming it', () => {
  const placement = PlacementAllocator.install(ctx.params.context);
  const arena = new HeArena(ctx.params, placement);
  try {
    const ct = ctx.encrypt([1]);
    assert.throws(() => arena.adopt('ct:9', ct, ct.byteLength + 4), /"ct:9".*expected/);
    ct.dispose();
  } finally {
    arena.clear();
    placement.uninstall();
  }
});

test('arena: a lent object is used as it is and handed back, never disposed, when dropped or cleared', () => {
  const placement = PlacementAllocator.install(ctx.params.context);
  const arena = new HeArena(ctx.params, placement);
  try {
    const a = ctx.encrypt([0.5, -0.25], 1);
    const b = ctx.encrypt([0.125], 1);
    const returned: string[] = [];
    arena.lend('ct:a', a, a.byteLength, () => returned.push('a'));
    arena.lend('ct:b', b, b.byteLength, () => returned.push('b'));
    assert.equal(arena.get('ct:a'), a, 'no copy');
    assert.equal(arena.bytesInUse, a.byteLength + b.byteLength);
    assert.throws(() => arena.release('ct:a'), /lent to the arena/);
    const form = new Uint8Array(a.byteLength);
    arena.toBytes('ct:a', form);
    arena.drop('ct:a');
    assert.deepEqual(returned, ['a']);
    assert.equal(arena.has('ct:a'), false);
    arena.clear();
    assert.deepEqual(returned, ['a', 'b']);
    assert.equal(arena.bytesInUse, 0);
    // Still the caller's, alive: its limbs read back unchanged.
    const again = new Uint8Array(a.byteLength);
    writeHeObject(a, again);
    assert.deepEqual(again, form);
    a.dispose();
    b.dispose();
  } finally {
    arena.clear();
    placement.uninstall();
  }
});

test('storedHeView: the stored form as it lies in kernel memory, piece by piece, equals the serialized one', () => {
  const ct = ctx.evaluator.mulNew(ctx.encrypt([1, 2]), ctx.encrypt([3, 4]));
  for (const [live, seeded] of [
    [ct, false],
    [key, false],
    [key, true],
  ] as const) {
    const pieces = storedHeView(live, { seeded });
    assert.ok(pieces !== null);
    for (const p of pieces)
      assert.ok(p.buffer instanceof SharedArrayBuffer, 'every piece can go to an I/O worker');
    const joined = gatherBytes(pieces);
    const expected = new Uint8Array(joined.length);
    assert.equal(writeHeObject(live, expected, { seeded }), joined.length);
    assert.deepEqual(joined, expected);
  }
  ct.dispose();
});
