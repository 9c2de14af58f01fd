import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CkksOpRecord, runCkksBench } from './ckks.ts';

const REQUIRED_OPS = [
  'encode',
  'decode',
  'encrypt',
  'decrypt',
  'add',
  'multiply_plain',
  'multiply_relin_rescale',
  'rotate',
  'galois_keygen',
  'serialize',
  'serialize_into',
  'deserialize',
  'rotate_hoisted_16',
];
const OPS_WITHOUT_VALUES = new Set(['galois_keygen', 'serialize', 'serialize_into']);
const RATE_OPS = new Set(['serialize', 'serialize_into', 'deserialize']);
const BYTES_OPS = ['bytes_ciphertext', 'bytes_relin_key', 'bytes_galois_key'];

// A correctness test of the harness (both libraries compute what the bench claims), not a timing assertion.
test('bench ckks at logN 13 prints parseable lines for every op, with small errors on both sides', async () => {
  const lines: string[] = [];
  const records = await runCkksBench({ logN: 13, reps: 1, write: (line) => lines.push(line) });
  assert.equal(lines.length, records.length);
  const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.deepEqual(parsed, JSON.parse(JSON.stringify(records)));
  for (const record of parsed) {
    assert.equal(record.suite, 'ckks');
    assert.equal(record.logN, 13);
  }

  const ops = parsed.filter((r) => 'ratio' in r) as unknown as CkksOpRecord[];
  assert.deepEqual(ops.map((r) => r.op).sort(), [...REQUIRED_OPS].sort());
  for (const r of ops) {
    assert.equal(r.peer, 'node-seal');
    assert.ok(r.logQP > 200 && r.logQP <= 218, `${r.op}: logQP ${r.logQP}`);
    assert.ok(r.home_ms > 0 && Number.isFinite(r.home_ms), `${r.op}: home_ms ${r.home_ms}`);
    assert.ok(r.peer_ms > 0 && Number.isFinite(r.peer_ms), `${r.op}: peer_ms ${r.peer_ms}`);
    assert.ok(Math.abs(r.ratio - r.peer_ms / r.home_ms) <= 0.01 * r.ratio, `${r.op}: ratio ${r.ratio}`);
    if (RATE_OPS.has(r.op)) {
      // The rate is the bytes over the median time of the same run.
      assert.ok((r.home_bytes as number) >= 2 * 6 * 8192 * 4, `${r.op}: ${r.home_bytes} bytes`);
      const rate = (r.home_bytes as number) / r.home_ms / 1e6;
      assert.ok(
        Math.abs((r.home_gb_per_s as number) - rate) <= 0.001 + 0.01 * rate,
        `${r.op}: ${r.home_gb_per_s} GB/s`,
      );
    } else assert.equal(r.home_gb_per_s, undefined, r.op);
    if (OPS_WITHOUT_VALUES.has(r.op)) {
      assert.equal(r.home_log2_err, null, r.op);
      assert.equal(r.peer_log2_err, null, r.op);
    } else {
      assert.ok(
        typeof r.home_log2_err === 'number' && r.home_log2_err < -10,
        `${r.op}: HomE 2^${r.home_log2_err}`,
      );
      assert.ok(
        typeof r.peer_log2_err === 'number' && r.peer_log2_err < -10,
        `${r.op}: SEAL 2^${r.peer_log2_err}`,
      );
    }
  }

  for (const op of BYTES_OPS) {
    const r = parsed.find((x) => x.op === op);
    assert.ok(r, `missing ${op}`);
    for (const key of ['home_bytes', 'peer_bytes']) {
      assert.ok(typeof r[key] === 'number' && (r[key] as number) > 0, `${op}.${key} = ${r[key]}`);
    }
    for (const key of ['home_seeded_bytes', 'peer_seeded_bytes']) {
      const seeded = r[key];
      if (seeded === null) continue;
      assert.ok(typeof seeded === 'number' && seeded > 0, `${op}.${key} = ${seeded}`);
      // A seeded form stores one uniform half as a seed: about half of the full form, never more.
      assert.ok(seeded < (r[key.replace('_seeded', '')] as number), `${op}.${key} = ${seeded}`);
    }
  }
  // A fresh top-level ciphertext at logN 13 holds 2 × 6 limbs × 8192 words of 4 bytes.
  const ct = parsed.find((x) => x.op === 'bytes_ciphertext');
  assert.ok((ct?.home_bytes as number) >= 2 * 6 * 8192 * 4);

  const summary = parsed.at(-1);
  assert.equal(summary?.summary, true);
  const minRatio = Math.min(...ops.map((r) => r.ratio));
  assert.equal(summary?.min_ratio, minRatio);
  assert.ok(ops.some((r) => r.op === summary?.min_ratio_op && r.ratio === minRatio));
});

test('bench ckks rejects a ring degree it has no pairing for', async () => {
  await assert.rejects(
    runCkksBench({ logN: 12, reps: 1, write: () => {} }),
    /logN = 12: expected 13, 14 or 15/,
  );
});
