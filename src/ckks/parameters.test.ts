import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError, SecurityError } from '../util/errors.ts';
import { Parameters, PRESETS } from './parameters.ts';
import { MAX_LOG_QP_128 } from './security.ts';

describe('Parameters', () => {
  it('every preset is valid, 128-bit secure and keeps its scale next to the default at every level', () => {
    for (const [name, literal] of Object.entries(PRESETS)) {
      const params = Parameters.create(literal);
      assert.ok(params.logQP <= MAX_LOG_QP_128[params.logN], `${name}: logQP ${params.logQP}`);
      assert.equal(params.insecure, false);
      assert.equal(params.qPrimes.length, params.limbsAtLevel(params.depth));
      assert.equal(
        new Set([...params.qPrimes, ...params.pPrimes]).size,
        params.qPrimes.length + params.pPrimes.length,
      );
      for (const p of [...params.qPrimes, ...params.pPrimes]) assert.equal((p - 1) % (2 * params.n), 0);
      for (const scale of params.scaleAtLevel) {
        assert.ok(
          Math.abs(Math.log2(scale / params.defaultScale)) < 0.2,
          `${name}: scale 2^${Math.log2(scale)}`,
        );
      }
      assert.ok(params.digits * params.digitSize >= params.qPrimes.length);
      assert.ok(params.pPrimes.length >= params.digitSize, `${name}: P must cover a digit`);
    }
  });

  it('is memoized and immutable, with an id that depends on the parameters', () => {
    const a = Parameters.create({ logN: 13, depth: 4, specialPrimes: 1 });
    assert.equal(a, Parameters.create({ logN: 13, depth: 4, specialPrimes: 1 }));
    assert.notEqual(a.id, Parameters.create({ logN: 13, depth: 3, specialPrimes: 1 }).id);
    assert.match(a.id, /^[0-9a-f]{16}$/);
    assert.throws(() => {
      (a as unknown as { depth: number }).depth = 9;
    }, TypeError);
  });

  it('rejects a set above the 128-bit bound unless insecure is set, and warns then', () => {
    assert.throws(
      () => Parameters.create({ logN: 13, depth: 8, specialPrimes: 2 }),
      (e: unknown) => e instanceof SecurityError && /exceeds the 128-bit bound 218/.test(e.message),
    );
    const warnings: string[] = [];
    const listener = (w: Error) => warnings.push(w.message);
    process.on('warning', listener);
    const params = Parameters.create({ logN: 13, depth: 8, specialPrimes: 2, insecure: true });
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        process.off('warning', listener);
        assert.equal(params.insecure, true);
        assert.ok(warnings.some((w) => w.includes('INSECURE')));
        resolve();
      }),
    );
  });

  it('names the bad value in its errors', () => {
    const cases: [unknown, RegExp][] = [
      [{ logN: 9, depth: 1 }, /logN = 9: expected an integer in \[10, 17\]/],
      [{ logN: 14, depth: -1 }, /depth = -1/],
      [{ logN: 14, depth: 2, primesPerLevel: 3 }, /primesPerLevel = 3/],
      [{ logN: 14, depth: 2, logDefaultScale: 45 }, /logDefaultScale = 45/],
      [{ logN: 14, depth: 2, secret: { kind: 'gaussian' } }, /secret.kind = "gaussian"/],
      [{ logN: 14, depth: 2, specialPrimes: 1, digits: 2 }, /digits = 2 with specialPrimes = 1/],
      [null, /expected an object/],
    ];
    for (const [literal, pattern] of cases) {
      assert.throws(
        () => Parameters.create(literal as never),
        (e: unknown) => e instanceof InvalidArgumentError && pattern.test(e.message),
        String(pattern),
      );
    }
  });

  it('exposes level bookkeeping consistent with the chain', () => {
    const params = Parameters.create(PRESETS.PN14QP438S60);
    assert.equal(params.primesPerLevel, 2);
    assert.equal(params.limbsAtLevel(0), 3);
    assert.equal(params.limbsAtLevel(params.depth), params.qPrimes.length);
    assert.equal(params.levelOfLimbs(5), 1);
    assert.equal(params.moduliAtLevel(2), params.moduliAtLevel(2));
    assert.equal(params.moduliQPAtLevel(1).length, 5 + params.pPrimes.length);
    assert.throws(() => params.checkLevel(params.depth + 1), InvalidArgumentError);
  });
});
