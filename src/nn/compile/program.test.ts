import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { OnnxBuilder } from '../../../tests/support/onnx-builder.ts';
import { seededValues } from '../../../tests/support/test-helpers.ts';
import { FormatError } from '../../util/errors.ts';
import { compileModel } from './index.ts';
import { importOnnx } from '../onnx/import.ts';
import { accessSequence } from '../../program/access.ts';
import { opCounts, plaintextLastUse, programFootprint } from '../../program/analysis.ts';
import { decodeProgram, deserializeProgram, encodeProgram, serializeProgram } from '../../program/codec.ts';
import { plaintextSlots } from '../../program/packing.ts';
import { validateProgram } from '../../program/validate.ts';

/** Conv 3×3 → x² → Gemm: a CryptoNets in miniature. */
function tinyModel() {
  const b = new OnnxBuilder();
  const x = b.input('x', ['N', 1, 4, 4]);
  const c = b.conv(x, {
    weight: seededValues(18, 1, -0.5, 0.5),
    weightDims: [2, 1, 3, 3],
    bias: [0.1, -0.2],
  });
  const s = b.node('Mul', [c, c])[0];
  b.output(
    b.gemm(b.flatten(s), { weight: seededValues(24, 2, -0.5, 0.5), weightDims: [8, 3], bias: [0, 1, 2] }),
  );
  return importOnnx(b.toBytes());
}

const { program } = compileModel(tinyModel(), { batchSize: 16 });

/** The parsed JSON of a program, edited freely by the tests. */
// biome-ignore lint/suspicious/noExplicitAny: tests corrupt arbitrary fields of the parsed JSON
type ProgramJson = Record<string, any>;

describe('HE program', () => {
  it('lists every instruction with levels, scales, sizes and keys, and validates', () => {
    validateProgram(program);
    assert.equal(program.depth, 3);
    assert.equal(program.logN, 13);
    assert.equal(program.inputs.length, 16);
    assert.equal(program.outputs.length, 3);
    assert.deepEqual(program.rotations, []);
    assert.equal(program.relinearization, true);
    const counts = opCounts(program);
    assert.equal(counts.square, 8);
    assert.equal(counts.rescale, 8 + 8 + 3);
    for (const ins of program.instructions) {
      if (ins.op === 'relinearize') assert.deepEqual(ins.keys, ['relin']);
      if (ins.op === 'free') continue;
      assert.ok(ins.layer.length > 0);
      assert.equal(ins.bytes.args.length, ins.args.length);
    }
    // The outputs are never freed; everything else is freed exactly once.
    const freed = program.instructions.filter((i) => i.op === 'free').flatMap((i) => i.args);
    assert.equal(new Set(freed).size, freed.length);
    for (const o of program.outputs) assert.ok(!freed.includes(o.id));
  });

  it('round-trips through JSON + blob and the single-file form', () => {
    const { json, blob } = serializeProgram(program);
    const again = deserializeProgram(json, blob);
    assert.deepEqual(again, program);
    assert.deepEqual(decodeProgram(encodeProgram(program)), program);
    const parsed = JSON.parse(json);
    assert.equal(parsed.format, 'home-he-program');
    assert.equal(parsed.version, 5);
  });

  it('computes the peak live bytes and the access sequence for the runtime', () => {
    const fp = programFootprint(program);
    const inputBytes = program.inputs.reduce((s, i) => s + i.bytes, 0);
    assert.equal(fp.inputBytes, inputBytes);
    assert.ok(fp.peakBytes >= inputBytes && fp.peakBytes < inputBytes * 4);
    const access = accessSequence(program);
    const ids = new Set(access.objects.map((o) => o.id));
    assert.ok(ids.has('key:relin'));
    assert.equal(access.steps.length, program.instructions.filter((i) => i.op !== 'free').length);
    for (const step of access.steps) {
      for (const id of [...step.reads, ...step.writes, ...(step.frees ?? [])]) assert.ok(ids.has(id), id);
      assert.ok(step.instruction !== undefined && (step.modularMultiplies ?? 0) > 0);
    }
    const relin = access.steps.find((s) => s.op === 'relinearize');
    assert.ok(relin?.reads.includes('key:relin'));
  });

  it('plaintexts encoded on use: one reader each in latency packing, transient in the footprint, round-trip', () => {
    const images = seededValues(8 * 16, 3, 0, 1);
    const compile = (lazyPlaintexts: boolean) =>
      compileModel(tinyModel(), { mode: 'latency', calibration: { images, count: 8 }, lazyPlaintexts })
        .program;
    const resident = compile(false);
    const lazy = compile(true);
    assert.ok(lazy.plaintexts.length > 0 && lazy.plaintexts.every((p) => p.encodeOnUse === true));
    const last = plaintextLastUse(lazy);
    const readers = new Map<number, number>();
    lazy.instructions.forEach((ins, i) => {
      if (ins.plaintext === undefined) return;
      readers.set(ins.plaintext, (readers.get(ins.plaintext) ?? 0) + 1);
      assert.equal(last[ins.plaintext], i);
    });
    assert.deepEqual([...readers.values()], Array(lazy.plaintexts.length).fill(1));
    const fpLazy = programFootprint(lazy);
    const fpResident = programFootprint(resident);
    assert.equal(fpLazy.plaintextBytes, fpResident.plaintextBytes);
    assert.equal(fpResident.residentPlaintextBytes, fpResident.plaintextBytes);
    assert.equal(fpLazy.residentPlaintextBytes, 0);
    const largest = Math.max(...lazy.plaintexts.map((p) => p.bytes));
    assert.ok(fpLazy.peakBytes <= fpResident.peakBytes - fpResident.plaintextBytes + largest);
    assert.deepEqual(decodeProgram(encodeProgram(lazy)), lazy);
    const { json, blob } = serializeProgram(lazy);
    const parsed = JSON.parse(json);
    parsed.plaintexts[0].encodeOnUse = 'yes';
    assert.throws(
      () => deserializeProgram(JSON.stringify(parsed), blob),
      (e: unknown) =>
        e instanceof FormatError && /plaintexts\[0\]\.encodeOnUse = .*expected true or false/.test(e.message),
    );
  });

  it('every stored form of a plaintext (dense, pairs, palette, palette entries) reads as the same vector; bad ones are refused', () => {
    const latency = compileModel(tinyModel(), { mode: 'latency' }).program;
    // The vector of the first plaintext with zeros and non-zeros, read from whatever form the compiler chose.
    const original = latency.plaintexts.find((pt) => {
      const v = plaintextSlots(latency, { ...pt, replicate: false }).subarray(0, pt.length);
      return v.some((x) => x === 0) && v.some((x) => x !== 0);
    });
    assert.ok(original);
    const values = plaintextSlots(latency, { ...original, replicate: false }).subarray(0, original.length);
    const nonZero = [...values.keys()].filter((slot) => values[slot] !== 0);
    const palette = [...new Set(values)];
    const nonZeroPalette = [...new Set(nonZero.map((slot) => values[slot]))];
    // Each form appended to the constants (and codes) of the program, as the only change.
    const forms = {
      dense: { values: [...values], codes: [] as number[], fields: {} },
      pairs: {
        values: nonZero.flatMap((slot) => [slot, values[slot]]),
        codes: [],
        fields: { entries: nonZero.length },
      },
      palette: {
        values: palette,
        codes: [...values].map((v) => palette.indexOf(v)),
        fields: { palette: palette.length },
      },
      paletteEntries: {
        values: nonZeroPalette,
        codes: nonZero.flatMap((slot) => [slot & 0xff, slot >>> 8, nonZeroPalette.indexOf(values[slot])]),
        fields: { entries: nonZero.length, palette: nonZeroPalette.length },
      },
    };
    const withForm = (form: (typeof forms)[keyof typeof forms]) => {
      const pt = {
        id: original.id,
        level: original.level,
        scale: original.scale,
        bytes: original.bytes,
        length: original.length,
        replicate: original.replicate,
        offset: latency.constants.length,
        ...form.fields,
        ...('palette' in form.fields ? { codeOffset: latency.paletteCodes.length } : {}),
      };
      const program = {
        ...latency,
        constants: Float64Array.from([...latency.constants, ...form.values]),
        paletteCodes: Uint8Array.from([...latency.paletteCodes, ...form.codes]),
        plaintexts: latency.plaintexts.map((p) => (p.id === original.id ? pt : p)),
      };
      validateProgram(program);
      return { program, pt };
    };
    for (const [name, form] of Object.entries(forms)) {
      const { program, pt } = withForm(form);
      assert.deepEqual(plaintextSlots(program, pt), plaintextSlots(latency, original), name);
      // Written into a reused vector (as encoding does), every slot is overwritten: the same as a fresh one,
      // tiled or not.
      for (const read of [pt, { ...pt, replicate: !pt.replicate }]) {
        const reused = new Float64Array(program.slots).fill(Number.NaN);
        assert.deepEqual(plaintextSlots(program, read, reused), plaintextSlots(program, read), name);
      }
      assert.deepEqual(decodeProgram(encodeProgram(program)), program, name);
    }
    assert.throws(() => plaintextSlots(latency, original, new Float64Array(3)), /out has 3 slots/);

    // Edits of the serialized program: the JSON, the float64 constants and the palette codes after them.
    const refuse = (
      program: typeof latency,
      f: (p: ProgramJson, c: Float64Array, codes: Uint8Array) => void,
      pattern: RegExp,
    ) => {
      const { json, blob } = serializeProgram(program);
      const p = JSON.parse(json);
      const bytes = blob.slice();
      const constantBytes = program.constants.length * 8;
      f(p, new Float64Array(bytes.buffer, 0, program.constants.length), bytes.subarray(constantBytes));
      assert.throws(
        () => deserializeProgram(JSON.stringify(p), bytes),
        (e: unknown) => e instanceof FormatError && pattern.test(e.message),
      );
    };
    const at = `plaintexts\\[${original.id}\\]`;
    const pairs = withForm(forms.pairs);
    const pairsAt = pairs.pt.offset;
    refuse(pairs.program, (p) => (p.plaintexts[original.id].entries = -1), new RegExp(`${at}.entries = -1`));
    refuse(
      pairs.program,
      (p) => (p.plaintexts[original.id].entries = original.length + 1),
      new RegExp(`${at}.entries = ${original.length + 1}`),
    );
    refuse(
      pairs.program,
      (p) => (p.plaintexts[original.id].offset = pairs.program.constants.length - 1),
      new RegExp(`${at}: offset .*pairs outside`),
    );
    refuse(
      pairs.program,
      (_p, c) => (c[pairsAt] = original.length),
      new RegExp(`${at}: entry 0 names slot ${original.length}`),
    );
    refuse(pairs.program, (_p, c) => (c[pairsAt] = 0.5), new RegExp(`${at}: entry 0 names slot 0.5`));
    if (nonZero.length > 1)
      refuse(
        pairs.program,
        (_p, c) => (c[pairsAt + 2] = c[pairsAt]),
        new RegExp(`${at}: entry 1 names slot`),
      );

    const byPalette = withForm(forms.palette);
    const codesAt = byPalette.pt.codeOffset as number;
    refuse(
      byPalette.program,
      (p) => (p.plaintexts[original.id].palette = 0),
      new RegExp(`${at}.palette = 0`),
    );
    refuse(
      byPalette.program,
      (p) => (p.plaintexts[original.id].palette = 257),
      new RegExp(`${at}.palette = 257`),
    );
    refuse(
      byPalette.program,
      (p) => (p.plaintexts[original.id].offset = byPalette.program.constants.length),
      new RegExp(`${at}: offset .* a palette of ${palette.length} outside`),
    );
    refuse(
      byPalette.program,
      (p) => (p.plaintexts[original.id].codeOffset = codesAt + 1),
      new RegExp(`${at}.codeOffset = ${codesAt + 1}: its ${original.length} code bytes fall outside`),
    );
    refuse(
      byPalette.program,
      (_p, _c, codes) => (codes[codesAt + 2] = palette.length),
      new RegExp(`${at}: slot 2 takes palette value ${palette.length}: expected below ${palette.length}`),
    );
    const byEntries = withForm(forms.paletteEntries);
    const entriesAt = byEntries.pt.codeOffset as number;
    refuse(
      byEntries.program,
      (_p, _c, codes) => {
        codes[entriesAt] = original.length & 0xff;
        codes[entriesAt + 1] = original.length >>> 8;
      },
      new RegExp(`${at}: entry 0 names slot ${original.length}`),
    );
    refuse(
      byEntries.program,
      (_p, _c, codes) => (codes[entriesAt + 2] = 255),
      new RegExp(`${at}: entry 0 takes palette value 255`),
    );
    if (nonZero.length > 1)
      refuse(
        byEntries.program,
        (_p, _c, codes) => {
          codes[entriesAt + 3] = codes[entriesAt];
          codes[entriesAt + 4] = codes[entriesAt + 1];
        },
        new RegExp(`${at}: entry 1 names slot`),
      );
  });

  it('the compiler stores a latency diagonal of a few weights by palette, in fewer bytes than float64', () => {
    const latency = compileModel(tinyModel(), { mode: 'latency' }).program;
    const byPalette = latency.plaintexts.filter((pt) => pt.palette !== undefined);
    assert.ok(byPalette.length > 0);
    for (const pt of byPalette) {
      const codeBytes = pt.entries === undefined ? pt.length : 3 * pt.entries;
      const floatBytes = 8 * (pt.entries === undefined ? pt.length : 2 * pt.entries);
      assert.ok(8 * (pt.palette as number) + codeBytes < floatBytes);
    }
  });

  it('rejects invalid programs with a FormatError naming the field', () => {
    const { json, blob } = serializeProgram(program);
    const edit = (f: (p: ProgramJson) => void) => {
      const p = JSON.parse(json);
      f(p);
      return () => deserializeProgram(JSON.stringify(p), blob);
    };
    assert.throws(
      edit((p) => (p.version = 1)),
      (e: unknown) =>
        e instanceof FormatError && /version = 1: this reader supports version 5/.test(e.message),
    );
    assert.throws(
      edit((p) => (p.format = 'x')),
      /format = "x"/,
    );
    assert.throws(
      edit((p) => (p.instructions[0].op = 'bogus')),
      /instructions\[0\]\.op = "bogus"/,
    );
    assert.throws(
      edit((p) => (p.instructions[0].level = 99)),
      /instructions\[0\]\.level = 99/,
    );
    assert.throws(
      edit((p) => (p.instructions[0].bytes.out += 1)),
      /instructions\[0\]\.bytes\.out/,
    );
    assert.throws(
      edit((p) => p.instructions.splice(0, 1)),
      FormatError,
    );
    assert.throws(
      edit((p) => (p.rotations = [1])),
      /galoisElements/,
    );
    assert.throws(
      edit((p) => (p.outputs[0].id = 123456)),
      /outputs\[0\]\.id/,
    );
    assert.throws(() => deserializeProgram(json, blob.subarray(8)), /constants blob/);
    assert.throws(() => deserializeProgram('{', blob), /invalid JSON/);
    assert.throws(() => decodeProgram(new Uint8Array([1, 2, 3])), /magic/);
    // A free of a value followed by a read of it.
    const p = JSON.parse(json);
    const useIndex = p.instructions.findIndex((i: { op: string }) => i.op === 'rescale');
    p.instructions.splice(useIndex, 0, { op: 'free', args: [p.instructions[useIndex].args[0]], out: [] });
    assert.throws(() => deserializeProgram(JSON.stringify(p), blob), /freed/);
  });

  it('fuzz: corrupted JSON or bytes never crash, they throw FormatError or load a valid program', () => {
    const bytes = encodeProgram(program);
    const { json, blob } = serializeProgram(program);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        (edits) => {
          const copy = Uint8Array.from(bytes);
          for (const [at, value] of edits) copy[at % copy.length] = value;
          try {
            validateProgram(decodeProgram(copy));
          } catch (e) {
            assert.ok(e instanceof FormatError, String(e));
          }
        },
      ),
      { seed: 7, numRuns: 150 },
    );
    const parsed = JSON.parse(json);
    const paths: [Record<string, unknown>, string][] = [];
    const walk = (o: unknown) => {
      if (typeof o !== 'object' || o === null) return;
      for (const [k, v] of Object.entries(o)) {
        paths.push([o as Record<string, unknown>, k]);
        if (paths.length < 4000) walk(v);
      }
    };
    walk(parsed);
    const junk = [null, -1, 1.5, 'x', [], {}, 1e308, true];
    fc.assert(
      fc.property(fc.nat(paths.length - 1), fc.nat(junk.length - 1), (i, j) => {
        const [obj, key] = paths[i];
        const saved = obj[key];
        obj[key] = junk[j];
        try {
          deserializeProgram(JSON.stringify(parsed), blob);
        } catch (e) {
          assert.ok(e instanceof FormatError, `${key}: ${String(e)}`);
        } finally {
          obj[key] = saved;
        }
      }),
      { seed: 11, numRuns: 400 },
    );
  });
});
