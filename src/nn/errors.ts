import { InvalidArgumentError } from '../util/errors.ts';

/**
 * A well-formed model that uses something the compiler cannot lower: an operator outside the supported set, a
 * dynamic shape, a data type or an attribute value. It is an `InvalidArgumentError` (hence a `HomeError`) whose
 * `code` is `'UNSUPPORTED_MODEL'`. The message names the node, its op type and, for an unknown
 * operator, the list of supported ones, so the user can change the export rather than guess.
 *
 * @example
 * ```ts
 * try { importOnnx(bytes); } catch (e) { if (e instanceof UnsupportedModelError) console.error(e.opType, e.message); }
 * ```
 */
export class UnsupportedModelError extends InvalidArgumentError {
  /** The ONNX node name (or a generated `#index` name when the node has none), when a node is at fault. */
  readonly node: string | undefined;
  /** The ONNX op type at fault, when a node is at fault. */
  readonly opType: string | undefined;
  constructor(message: string, where?: { node?: string; opType?: string }) {
    super(message);
    // A kind of invalid argument (callers catching InvalidArgumentError still see it) with its own stable code.
    (this as { code: string }).code = 'UNSUPPORTED_MODEL';
    this.node = where?.node;
    this.opType = where?.opType;
  }
}
