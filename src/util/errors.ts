/**
 * Typed errors shared by every layer. Each names the bad value and what was expected, so a caller can act on it
 * without parsing the message.
 *
 * @example
 * ```ts
 * try { parameters.checkLevel(99); } catch (e) { if (e instanceof HomeError) console.error(e.code, e.message); }
 * ```
 */
export class HomeError extends Error {
  /** A stable, machine-readable error code, e.g. `INVALID_ARGUMENT`. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * An argument outside its documented domain (wrong type, range, length or shape).
 *
 * @example
 * ```ts
 * throw new InvalidArgumentError(`logN = ${logN}: expected an integer in [10, 17]`);
 * ```
 */
export class InvalidArgumentError extends HomeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', message, options);
  }
}

/**
 * Two operands that cannot be combined: other parameters, level, scale or domain.
 *
 * @example
 * ```ts
 * throw new MismatchError(`scales differ: left ${a}, right ${b}`);
 * ```
 */
export class MismatchError extends HomeError {
  constructor(message: string) {
    super('MISMATCH', message);
  }
}

/**
 * An evaluation key (relinearization, rotation, conjugation) that the operation needs was not generated.
 *
 * @example
 * ```ts
 * throw new MissingKeyError('rotate: no Galois key for rotation by 3');
 * ```
 */
export class MissingKeyError extends HomeError {
  constructor(message: string) {
    super('MISSING_KEY', message);
  }
}

/**
 * Serialized bytes that are truncated, oversized, corrupted or of another version or type.
 *
 * @example
 * ```ts
 * throw new FormatError('ciphertext: checksum mismatch (the object is corrupted)');
 * ```
 */
export class FormatError extends HomeError {
  constructor(message: string) {
    super('FORMAT', message);
  }
}

/**
 * A parameter set that is invalid or below the 128-bit security level without explicit opt-in.
 *
 * @example
 * ```ts
 * throw new SecurityError('log2(QP) = 500 exceeds the 128-bit bound 438');
 * ```
 */
export class SecurityError extends HomeError {
  constructor(message: string) {
    super('SECURITY', message);
  }
}

/**
 * A limit of the machine or of the format was reached (memory, arena, file size).
 *
 * @example
 * ```ts
 * throw new ResourceError('arena: kernel memory would exceed 4 GiB');
 * ```
 */
export class ResourceError extends HomeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('RESOURCE', message, options);
  }
}
