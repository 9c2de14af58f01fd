import { type Allocator, allocationBytes } from '../../ring/arena.ts';
import type { KernelContext } from '../../ring/context.ts';
import { check } from '../../util/assert.ts';
import { InvalidArgumentError } from '../../util/errors.ts';

interface Region {
  pointer: number;
  words: number;
  /** Pieces handed out and not yet freed; the region goes back to the base allocator at 0. */
  live: number;
}

/**
 * An {@link Allocator} over another one that can place a run of allocations back to back in one region of kernel
 * memory. The tiered runtime materializes a ciphertext's or key's polynomials this way, so the whole object is one
 * contiguous byte range that an I/O worker reads into or writes from in place (no staging copy). A placed piece is
 * freed like any polynomial (`Poly.dispose`); the region returns to the base allocator when its last piece does.
 * Every other allocation passes straight through.
 *
 * Install it with {@link PlacementAllocator.install} for as long as placed polynomials live; dispose them all
 * before {@link PlacementAllocator.uninstall}.
 *
 * @example
 * ```ts
 * const placement = PlacementAllocator.install(params.context);
 * const { value: polys, pointer } = placement.placed(2 * words, () => [Poly.alloc(m, true, false), Poly.alloc(m, true, false)]);
 * // polys[1].pointer === pointer + words * 4
 * for (const p of polys) p.dispose();
 * placement.uninstall();
 * ```
 */
export class PlacementAllocator implements Allocator {
  readonly base: Allocator;
  readonly context: KernelContext;
  readonly #pieces = new Map<number, Region>();
  #placing: { region: Region; offsetBytes: number } | null = null;
  #installed = false;
  #placedBytes = 0;

  private constructor(context: KernelContext) {
    this.context = context;
    this.base = context.allocator;
  }

  /** Wraps `context`'s current allocator and installs the wrapper in the context. */
  static install(context: KernelContext): PlacementAllocator {
    const placement = new PlacementAllocator(context);
    context.setAllocator(placement);
    placement.#installed = true;
    return placement;
  }

  /** Puts the base allocator back. Refuses while placed pieces are alive (their frees would go astray). */
  uninstall(): void {
    if (!this.#installed) return;
    check(
      this.#pieces.size === 0,
      () =>
        `PlacementAllocator.uninstall: ${this.#pieces.size} placed polynomials are still alive; dispose them first`,
    );
    check(
      this.context.allocator === this,
      () => 'PlacementAllocator.uninstall: another allocator was installed over it',
    );
    this.context.setAllocator(this.base);
    this.#installed = false;
  }

  get bytesInUse(): number {
    return this.base.bytesInUse;
  }

  get peakBytes(): number {
    return this.base.peakBytes;
  }

  /** Bytes of regions currently holding placed pieces. */
  get placedBytes(): number {
    return this.#placedBytes;
  }

  /** Placed pieces alive. */
  get livePieces(): number {
    return this.#pieces.size;
  }

  alloc(words: number): number {
    const placing = this.#placing;
    if (!placing) return this.base.alloc(words);
    const bytes = allocationBytes(words);
    const { region } = placing;
    if (placing.offsetBytes + bytes > region.words * 4) {
      throw new InvalidArgumentError(
        `placed allocation of ${words} words at byte ${placing.offsetBytes} overruns its region of ${region.words} ` +
          'words: expected the pieces to fit the region exactly',
      );
    }
    const pointer = region.pointer + placing.offsetBytes;
    placing.offsetBytes += bytes;
    region.live++;
    this.#pieces.set(pointer, region);
    return pointer;
  }

  free(pointer: number, words: number): void {
    const region = this.#pieces.get(pointer);
    if (!region) {
      this.base.free(pointer, words);
      return;
    }
    this.#pieces.delete(pointer);
    if (--region.live === 0) {
      this.base.free(region.pointer, region.words);
      this.#placedBytes -= allocationBytes(region.words);
    }
  }

  /**
   * Runs `make`, carving each allocation it makes from one new region of `words` words, in order. Returns what
   * `make` returned and the region's byte offset in kernel memory. `make` must allocate exactly the pieces the
   * region is sized for (checked: an overrun throws, an underrun is reported as an error).
   */
  placed<T>(
    words: number,
    make: () => T,
    options: { slackWords?: number } = {},
  ): { value: T; pointer: number } {
    check(this.#installed, () => 'PlacementAllocator.placed: expected the allocator to be installed');
    check(this.#placing === null, () => 'PlacementAllocator.placed: already placing (no nesting)');
    const slack = options.slackWords ?? 0;
    const total = words + slack;
    const pointer = this.base.alloc(total);
    const region: Region = { pointer, words: total, live: 0 };
    this.#placedBytes += allocationBytes(total);
    const placing = { region, offsetBytes: 0 };
    this.#placing = placing;
    let value: T;
    try {
      value = make();
    } catch (error) {
      this.#placing = null;
      if (region.live === 0) {
        this.base.free(pointer, total);
        this.#placedBytes -= allocationBytes(total);
      }
      throw error;
    }
    this.#placing = null;
    if (placing.offsetBytes !== words * 4) {
      // Pieces already handed out free the region when they are disposed.
      if (region.live === 0) {
        this.base.free(pointer, total);
        this.#placedBytes -= allocationBytes(total);
      }
      throw new InvalidArgumentError(
        `PlacementAllocator.placed: make() allocated ${placing.offsetBytes} bytes: expected exactly ${words * 4}`,
      );
    }
    return { value, pointer };
  }
}
