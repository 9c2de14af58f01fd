import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Encoder } from '../../ckks/encoder.ts';
import { Parameters } from '../../ckks/parameters.ts';
import { InferenceClient } from '../../nn/client.ts';
import { compileModel } from '../../nn/compile/index.ts';
import { loadIdxImages } from '../../nn/data.ts';
import { importOnnx } from '../../nn/onnx/import.ts';
import { findDataFile, findModelFile } from '../../platform/bundled-files.ts';
import type { HeProgram } from '../../program/program.ts';
import { InvalidArgumentError } from '../../util/errors.ts';
import { IoPool } from '../io/io-pool.ts';
import { DEVICE_PROFILES, type DeviceProfile } from '../store/devices.ts';
import { FileTier } from '../store/file-tier.ts';
import { analyzeProgram } from '../plan/program.ts';
import { choosePlaintextForms, measureEncodeNsPerLimb } from './plaintext-forms.ts';
import { heRuntimeProgram } from './program.ts';
import { InferenceServer } from './server.ts';

const { program } = compileModel(importOnnx(readFileSync(findModelFile('lola-small-mnist.onnx'))), {
  mode: 'latency',
});
const limbBytes = 4 * 2 ** program.logN;
const limbsOf = (i: number) => program.plaintexts[i].bytes / limbBytes;
/** About what encoding costs per limb at this ring size on a 2020s core (only ratios matter below). */
const encodeNsPerLimb = 50_000;

const io = new IoPool();
const dirs: string[] = [];
after(async () => {
  await io.terminate();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('plaintext forms: stored or encoded on use', () => {
  it('the program has plaintexts at several levels (the checks below need both kinds)', () => {
    const limbs = new Set(program.plaintexts.map((_, i) => limbsOf(i)));
    assert.ok(limbs.size >= 2, `plaintext limb counts: ${[...limbs].join(', ')}`);
  });

  it('a fast tier and many runs: every plaintext stored; one run: every plaintext encoded on use', () => {
    const device = DEVICE_PROFILES['nvme-gen4'];
    const many = choosePlaintextForms(program, { device, runs: 20, encodeNsPerLimb });
    assert.equal(many.stored, program.plaintexts.length);
    assert.equal(
      many.storedBytes,
      program.plaintexts.reduce((s, p) => s + p.bytes, 0),
    );
    // One run encodes every plaintext once either way; storing adds the write and the read.
    const once = choosePlaintextForms(program, { device, runs: 1, encodeNsPerLimb });
    assert.equal(once.encodeOnUse, program.plaintexts.length);
    assert.ok(once.chosen.onceNs + once.chosen.perRunNs < once.allStored.onceNs + once.allStored.perRunNs);
  });

  it('a tier slower to read than the encoder: every plaintext encoded on use, even for a long-lived server', () => {
    // 10 MB/s: a limb of logN-13 plaintext (32 KiB) reads in 3.3 ms, encodes in 0.05 ms.
    const slow: DeviceProfile = {
      ...DEVICE_PROFILES['nvme-gen4'],
      readBytesPerNs: 0.01,
      writeBytesPerNs: 0.01,
    };
    const choice = choosePlaintextForms(program, {
      device: slow,
      runs: Number.POSITIVE_INFINITY,
      encodeNsPerLimb,
    });
    assert.equal(choice.encodeOnUse, program.plaintexts.length);
    assert.ok(choice.chosen.perRunNs < choice.allStored.perRunNs);
  });

  it('a per-read latency between the costs of the smallest and largest plaintexts splits them by size', () => {
    const limbs = program.plaintexts.map((_, i) => limbsOf(i));
    const fewest = Math.min(...limbs);
    const most = Math.max(...limbs);
    // With bandwidth past reach, a read costs its latency; encoding costs encodeNsPerLimb per limb.
    const latency = encodeNsPerLimb * ((fewest + most) / 2);
    const device: DeviceProfile = {
      ...DEVICE_PROFILES['nvme-gen4'],
      readLatencyNs: latency,
      readBytesPerNs: 1e12,
    };
    const { forms } = choosePlaintextForms(program, {
      device,
      runs: Number.POSITIVE_INFINITY,
      encodeNsPerLimb,
    });
    forms.forEach((form, i) => {
      const readers = program.instructions.filter((ins) => ins.plaintext === i).length;
      const onUse = readers * encodeNsPerLimb * limbs[i] < readers * latency;
      assert.equal(form, onUse ? 'encode-on-use' : 'stored', `plaintext ${i}, ${limbs[i]} limbs`);
    });
    assert.ok(forms.includes('stored') && forms.includes('encode-on-use'), 'both forms chosen');
  });

  it('a plaintext the compiler marked encodeOnUse stays encoded on use', () => {
    const marked: HeProgram = {
      ...program,
      plaintexts: program.plaintexts.map((p, i) => (i === 0 ? { ...p, encodeOnUse: true } : p)),
    };
    const choice = choosePlaintextForms(marked, {
      device: DEVICE_PROFILES['optane-appdirect'],
      runs: 100,
      encodeNsPerLimb,
    });
    assert.equal(choice.forms[0], 'encode-on-use');
    assert.equal(choice.stored, program.plaintexts.length - 1);
  });

  it('bad costs are refused with a typed error', () => {
    const device = DEVICE_PROFILES.cxl;
    assert.throws(
      () => choosePlaintextForms(program, { device, runs: 0, encodeNsPerLimb }),
      InvalidArgumentError,
    );
    assert.throws(
      () => choosePlaintextForms(program, { device, runs: 1, encodeNsPerLimb: Number.NaN }),
      InvalidArgumentError,
    );
  });

  it('the encoder is measured: a positive time per limb', () => {
    const encoder = new Encoder(Parameters.create(program.parameters));
    const ns = measureEncodeNsPerLimb(program, encoder);
    assert.ok(Number.isFinite(ns) && ns > 0, `${ns} ns per limb`);
  });

  it('a tiered server expecting one run encodes on use, writes no plaintext, and gives the same logits', async () => {
    const images = loadIdxImages(readFileSync(findDataFile('mnist/t10k-images-idx3-ubyte.gz')), {
      scale: 1 / 256,
    }).data;
    const client = new InferenceClient(program, { seed: new Uint8Array(32).fill(5) });
    const inputs = client.encryptPass(images, 0, program.batchSize);
    // A budget below the footprint, so that stored plaintexts go to the slow tier.
    const budgetBytes = Math.ceil(1.5 * analyzeProgram(heRuntimeProgram(program)).maxStepBytes);
    const logits: Float64Array[] = [];
    const moved: number[] = [];
    // Stored, forced (what auto stores depends on the speeds it measures); then auto for one run, where encoding
    // on use wins whatever the speeds (the one encoding a stored plaintext needs too, without its write and read).
    for (const expectedRuns of [undefined, 1]) {
      const dir = mkdtempSync(join(tmpdir(), 'home-plaintext-forms-'));
      dirs.push(dir);
      const tier = await FileTier.open({ name: 'tmp', dir, io });
      const server = new InferenceServer(program, client.evaluationKeys, {
        memory: { budgetBytes, tiers: [tier] },
        ...(expectedRuns === undefined ? { plaintextForms: 'stored' as const } : { expectedRuns }),
      });
      try {
        if (expectedRuns === 1) assert.equal(server.plaintextForms?.encodeOnUse, program.plaintexts.length);
        else assert.equal(server.plaintextFormCounts.stored, program.plaintexts.length);
        const outputs = await server.run(new Map([...inputs].map(([id, ct]) => [id, ct.copy()])));
        logits.push(client.decryptPass(outputs, program.batchSize));
        const stats = server.lastRunStats!;
        moved.push(stats.slowBytesWritten + stats.slowBytesRead);
      } finally {
        server.dispose();
        await tier.close();
      }
    }
    assert.deepEqual(logits[1], logits[0]);
    const plaintextBytes = program.plaintexts.reduce((s, p) => s + p.bytes, 0);
    // Stored, each plaintext was written at least once; encoded on use, none was.
    assert.ok(moved[0] - moved[1] >= plaintextBytes, `slow tier traffic ${moved[0]} vs ${moved[1]} bytes`);
  });
});
