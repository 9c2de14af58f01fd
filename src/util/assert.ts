import { InvalidArgumentError } from './errors.ts';

/**
 * Renders a value for an error message without dumping large arrays or the contents of secrets.
 *
 * @example
 * ```ts
 * describe(new Uint32Array(4)); // 'Uint32Array(4)'
 * ```
 */
export function describe(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value);
  if (typeof value === 'string')
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (value === null || value === undefined) return String(value);
  if (ArrayBuffer.isView(value))
    return `${value.constructor.name}(${(value as unknown as { length: number }).length})`;
  if (Array.isArray(value)) return `array(${value.length})`;
  return typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value;
}

/**
 * Asserts that `value` is an integer in [min, max].
 *
 * @example
 * ```ts
 * assertInteger(logN, 'logN', 10, 17);
 * ```
 */
export function assertInteger(
  value: unknown,
  name: string,
  min = -Infinity,
  max = Infinity,
): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = Number.isFinite(min) || Number.isFinite(max) ? ` in [${min}, ${max}]` : '';
    throw new InvalidArgumentError(`${name} = ${describe(value)}: expected an integer${range}`);
  }
}

/**
 * Asserts that `value` is a finite number.
 *
 * @example
 * ```ts
 * assertFinite(scale, 'scale');
 * ```
 */
export function assertFinite(value: unknown, name: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new InvalidArgumentError(`${name} = ${describe(value)}: expected a finite number`);
  }
}

/**
 * Asserts a condition about an argument; the message should name the value and what was expected.
 *
 * @example
 * ```ts
 * check(slots.length <= maxSlots, () => `values.length = ${slots.length}: expected at most ${maxSlots}`);
 * ```
 */
export function check(condition: boolean, message: () => string): asserts condition {
  if (!condition) throw new InvalidArgumentError(message());
}
