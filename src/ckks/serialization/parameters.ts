import { defaultContext, type KernelContext } from '../../ring/context.ts';
/*
 * Parameters: their normalized literal in a 24-byte body, with the parameters id in the header; the reader
 * rebuilds them and accepts only the canonical encoding.
 */
import { describe } from '../../util/assert.ts';
import { InvalidArgumentError, MismatchError } from '../../util/errors.ts';
import { Parameters, type ParametersLiteral, type SecretDistribution } from '../parameters.ts';
import { verifyWholeChecksum } from './checksum.ts';
import {
  CHECKSUM_BYTES,
  formatError,
  HEADER_BYTES,
  type HeaderFields,
  ObjectType,
  PARAMETERS_BODY_BYTES,
} from './format.ts';
import { open } from './header.ts';
import { writeObject } from './writer.ts';

/**
 * Serializes parameters as their normalized literal (24 bytes of body) together with their id; the reader
 * rebuilds them with `Parameters.create` and checks that the id is the same.
 *
 * @example
 * ```ts
 * const bytes = serializeParameters(Parameters.create(PRESETS.PN14QP438));
 * ```
 */
export function serializeParameters(params: Parameters): Uint8Array {
  if (!(params instanceof Parameters)) {
    throw new InvalidArgumentError(`params = ${describe(params)}: expected Parameters`);
  }
  const literal = params.literal;
  const body = new Uint8Array(PARAMETERS_BODY_BYTES);
  const view = new DataView(body.buffer);
  body[0] = params.logN;
  body[1] = params.primesPerLevel;
  body[2] = params.basePrimes;
  body[3] = params.pPrimes.length;
  view.setUint16(4, params.depth, true);
  view.setUint16(6, params.digits, true);
  view.setFloat64(8, literal.logDefaultScale ?? Math.log2(params.defaultScale), true);
  body[16] = params.secret.kind === 'sparse-ternary' ? 1 : 0;
  body[17] = params.insecure ? 1 : 0;
  view.setUint16(18, 0, true);
  view.setUint32(20, params.secret.kind === 'sparse-ternary' ? params.secret.hammingWeight : 0, true);
  const out = new Uint8Array(HEADER_BYTES + PARAMETERS_BODY_BYTES + CHECKSUM_BYTES);
  const fields: HeaderFields = {
    type: ObjectType.Parameters,
    flags: 0,
    parametersId: params.id,
    level: 0,
    count: 0,
    galoisElement: 0,
    scale: 0,
    bodyLength: PARAMETERS_BODY_BYTES,
  };
  writeObject(out, 0, fields, params.context, [body]);
  return out;
}

/**
 * Rebuilds parameters from {@link serializeParameters} output with `Parameters.create`.
 *
 * @throws {FormatError} for bytes that are truncated, corrupted or not a valid parameter literal.
 * @throws {MismatchError} when this build derives parameters with another id from the literal.
 * @example
 * ```ts
 * const params = deserializeParameters(bytes);
 * const ct = deserializeCiphertext(params, ctBytes);
 * ```
 */
export function deserializeParameters(
  bytes: Uint8Array,
  options: { context?: KernelContext } = {},
): Parameters {
  const header = open(undefined, bytes, [ObjectType.Parameters]);
  const context = options.context ?? defaultContext();
  verifyWholeChecksum(bytes, header, context);
  const what = header.typeName;
  const view = new DataView(bytes.buffer, bytes.byteOffset + HEADER_BYTES, PARAMETERS_BODY_BYTES);
  const body = bytes.subarray(HEADER_BYTES, HEADER_BYTES + PARAMETERS_BODY_BYTES);
  const kind = body[16];
  if (kind > 1) throw formatError(what, 'secret distribution', kind, '0 (ternary) or 1 (sparse ternary)');
  const insecure = body[17];
  if (insecure > 1) throw formatError(what, 'insecure', insecure, '0 or 1');
  const reserved = view.getUint16(18, true);
  if (reserved !== 0) throw formatError(what, 'reserved body field', reserved, '0');
  const hammingWeight = view.getUint32(20, true);
  if (kind === 0 && hammingWeight !== 0)
    throw formatError(what, 'Hamming weight', hammingWeight, '0 for a ternary secret');
  const secret: SecretDistribution =
    kind === 1 ? { kind: 'sparse-ternary', hammingWeight } : { kind: 'ternary' };
  const primesPerLevel = body[1];
  if (primesPerLevel !== 1 && primesPerLevel !== 2)
    throw formatError(what, 'primes per level', primesPerLevel, '1 or 2');
  const literal: ParametersLiteral = {
    logN: body[0],
    depth: view.getUint16(4, true),
    primesPerLevel,
    basePrimes: body[2],
    specialPrimes: body[3],
    digits: view.getUint16(6, true),
    logDefaultScale: view.getFloat64(8, true),
    secret,
    insecure: insecure === 1,
  };
  let params: Parameters;
  try {
    params = Parameters.create(literal, { context });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw formatError(what, 'literal', JSON.stringify(literal), `valid parameters (${reason})`);
  }
  if (params.id !== header.parametersId) {
    throw new MismatchError(
      `parameters: the literal gives parameters ${params.id} in this build: expected the serialized id ${header.parametersId}`,
    );
  }
  // Accept only the canonical encoding, so that equal parameters always have equal bytes.
  const canonical = serializeParameters(params);
  for (let i = 0; i < canonical.length; i++) {
    if (canonical[i] !== bytes[i]) {
      throw formatError(
        what,
        `byte ${i}`,
        bytes[i],
        `${canonical[i]} (the canonical encoding of the literal)`,
      );
    }
  }
  return params;
}
