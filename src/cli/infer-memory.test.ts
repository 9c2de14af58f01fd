import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BootstrappingKeys } from '../ckks/bootstrapping/keys.ts';
import { planBudgetBytes } from './infer-memory.ts';

const GiB = 2 ** 30;
const MB = 1e6;

/** Keys whose only read fields are their sizes (planBudgetBytes reads nothing else). */
function keysOf(relinearization: number, denseToSparse: number, sparseToDense: number): BootstrappingKeys {
  return {
    relinearization: { byteLength: relinearization },
    denseToSparse: { byteLength: denseToSparse },
    sparseToDense: { byteLength: sparseToDense },
  } as unknown as BootstrappingKeys;
}

describe('planBudgetBytes: what a run leaves its plan', () => {
  const program = { constants: new Float64Array(10 * 1000), paletteCodes: new Uint8Array(20_000) };

  it('an eighth of headroom, then the constants (float64 values and palette codes)', () => {
    assert.equal(planBudgetBytes(4 * GiB, program, undefined), (4 * GiB * 7) / 8 - 80_000 - 20_000);
  });

  it("and the bootstrapper's resident keys", () => {
    const keys = keysOf(300 * MB, 50 * MB, 20 * MB);
    assert.equal(planBudgetBytes(4 * GiB, program, keys), (4 * GiB * 7) / 8 - 100_000 - 370 * MB);
  });

  it('counts the constants up to half of the budget', () => {
    const big = { constants: new Float64Array(2 ** 20), paletteCodes: new Uint8Array(0) };
    assert.equal(planBudgetBytes(2 * 2 ** 20, big, undefined), Math.floor((2 * 2 ** 20 * 7) / 8) - 2 ** 20);
  });
});
