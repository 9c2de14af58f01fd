/*
 * Key-switching keys: a switching key (the relinearization key), a Galois key (the same body, with its Galois
 * element in the header) and the evaluation-key set, a container of complete switching-key objects.
 */
import type { Xxh32x4Stream } from '../../ring/hash.ts';
import type { Poly } from '../../ring/poly.ts';
import { describe } from '../../util/assert.ts';
import { FormatError, InvalidArgumentError, MismatchError } from '../../util/errors.ts';
import { EvaluationKeys, GaloisKey, SwitchingKey } from '../keys.ts';
import type { Parameters } from '../parameters.ts';
import { verifyWholeChecksum } from './checksum.ts';
import {
  CHECKSUM_BYTES,
  FLAG_NTT,
  FLAG_SEEDED,
  formatError,
  HEADER_BYTES,
  type HeaderFields,
  type ObjectHeader,
  ObjectType,
  type SerializeOptions,
} from './format.ts';
import { open, readHeader } from './header.ts';
import { checkNtt, checkPolyModuli, checkSeed, checkSeedStillMatches } from './object-checks.ts';
import { BodyReader } from './reader.ts';
import { bodyLengthOf, evaluationKeyList, serializedSize, switchingKeyObjectBytes } from './size.ts';
import { type BodySegment, outputBytes, writeObject } from './writer.ts';

function checkSwitchingKey(key: SwitchingKey, seeded: boolean, what: string): void {
  if (!(key instanceof SwitchingKey)) {
    throw new InvalidArgumentError(`${what} = ${describe(key)}: expected a SwitchingKey`);
  }
  const params = key.params;
  const level = key.level;
  const digits = params.keyDigitsAtLevel(level);
  if (key.digits.length !== digits) {
    throw new InvalidArgumentError(
      `${what} has ${key.digits.length} digits: expected ${digits} (a key made for level ${level})`,
    );
  }
  const moduli = params.moduliQPAtLevel(level);
  key.digits.forEach((d, j) => {
    checkPolyModuli(d.b, moduli, `${what} digit ${j} b`);
    checkPolyModuli(d.a, moduli, `${what} digit ${j} a`);
    checkNtt([d.b, d.a], `${what} digit ${j}`);
  });
  checkSeed(key.seed, what);
  if (seeded) {
    key.digits.forEach((d, j) => {
      checkSeedStillMatches(d.a, key.seed, j, moduli[0], `${what} digit ${j} a`);
    });
  }
}

function switchingKeyFields(key: SwitchingKey, type: ObjectType, galoisElement: number, seeded: boolean) {
  const params = key.params;
  return {
    type,
    flags: FLAG_NTT | (seeded ? FLAG_SEEDED : 0),
    parametersId: params.id,
    level: key.level,
    count: key.digits.length,
    galoisElement,
    scale: 0,
    bodyLength: bodyLengthOf(params, type, key.level, key.digits.length, seeded),
  };
}

function switchingKeyBody(key: SwitchingKey, seeded: boolean): BodySegment[] {
  const body: BodySegment[] = [];
  for (const d of key.digits) {
    body.push(d.b);
    if (!seeded) body.push(d.a);
  }
  body.push(key.seed);
  return body;
}

function writeSwitchingKeyObject(
  out: Uint8Array,
  offset: number,
  key: SwitchingKey,
  type: ObjectType,
  galoisElement: number,
  seeded: boolean,
  outer?: Xxh32x4Stream,
): number {
  const fields = switchingKeyFields(key, type, galoisElement, seeded);
  return writeObject(out, offset, fields, key.params.context, switchingKeyBody(key, seeded), outer);
}

/**
 * Serializes a key-switching key (e.g. the relinearization key); `seeded: true` stores every a_j as the one
 * seed (about half the bytes).
 *
 * @example
 * ```ts
 * const bytes = serializeSwitchingKey(keygen.generateRelinearizationKey(sk), { seeded: true });
 * ```
 */
export function serializeSwitchingKey(key: SwitchingKey, options: SerializeOptions = {}): Uint8Array {
  const seeded = options.seeded === true;
  checkSwitchingKey(key, seeded, 'switching key');
  const out = outputBytes(serializedSize(key, options));
  writeSwitchingKeyObject(out, 0, key, ObjectType.SwitchingKey, 0, seeded);
  return out;
}

function checkGaloisElement(galoisElement: number, params: Parameters): void {
  const twoN = 2 * params.n;
  if (
    !Number.isInteger(galoisElement) ||
    galoisElement % 2 !== 1 ||
    galoisElement < 3 ||
    galoisElement >= twoN
  ) {
    throw new InvalidArgumentError(
      `Galois element = ${describe(galoisElement)}: expected an odd integer in [3, ${twoN - 1}]`,
    );
  }
}

/**
 * Serializes a Galois (rotation or conjugation) key with its Galois element.
 *
 * @example
 * ```ts
 * const bytes = serializeGaloisKey(keygen.generateGaloisKey(sk, galoisElementForRotation(1, params.logN)));
 * ```
 */
export function serializeGaloisKey(key: GaloisKey, options: SerializeOptions = {}): Uint8Array {
  if (!(key instanceof GaloisKey))
    throw new InvalidArgumentError(`key = ${describe(key)}: expected a GaloisKey`);
  const seeded = options.seeded === true;
  checkSwitchingKey(key.key, seeded, 'Galois key');
  checkGaloisElement(key.galoisElement, key.key.params);
  const out = outputBytes(serializedSize(key, options));
  writeSwitchingKeyObject(out, 0, key.key, ObjectType.GaloisKey, key.galoisElement, seeded);
  return out;
}

/**
 * Serializes an evaluation-key set: the relinearization key (if present) and every Galois key, each as a
 * complete object inside one container. An empty set has no parameters to name and is refused.
 *
 * @example
 * ```ts
 * const upload = serializeEvaluationKeys(keygen.generateEvaluationKeys(sk, { rotations: [1, 2] }), { seeded: true });
 * ```
 */
export function serializeEvaluationKeys(evk: EvaluationKeys, options: SerializeOptions = {}): Uint8Array {
  if (!(evk instanceof EvaluationKeys)) {
    throw new InvalidArgumentError(`evk = ${describe(evk)}: expected EvaluationKeys`);
  }
  const seeded = options.seeded === true;
  const keys = evaluationKeyList(evk);
  if (keys.length === 0) {
    throw new InvalidArgumentError(
      'evaluation keys: the set is empty: expected a relinearization key or at least one Galois key',
    );
  }
  const params = keys[0].params;
  for (const key of keys) {
    if (key.params !== params) {
      throw new MismatchError(
        `evaluation keys: a key has parameters ${key.parametersId}, another ${params.id}`,
      );
    }
  }
  if (evk.relinearization) checkSwitchingKey(evk.relinearization, seeded, 'relinearization key');
  for (const g of evk.galois.values()) {
    checkSwitchingKey(g.key, seeded, `Galois key ${g.galoisElement}`);
    checkGaloisElement(g.galoisElement, params);
  }
  if (keys.length > 0xffff) {
    throw new InvalidArgumentError(`evaluation keys: ${keys.length} keys: expected at most 65535`);
  }
  let bodyLength = 0;
  for (const key of keys) bodyLength += switchingKeyObjectBytes(params, seeded, key.level);
  const out = outputBytes(HEADER_BYTES + bodyLength + CHECKSUM_BYTES);
  const fields: HeaderFields = {
    type: ObjectType.EvaluationKeys,
    flags: FLAG_NTT | (seeded ? FLAG_SEEDED : 0),
    parametersId: params.id,
    level: params.depth,
    count: keys.length,
    galoisElement: 0,
    scale: 0,
    bodyLength,
  };
  writeObject(out, 0, fields, params.context, (offset, lanes) => {
    const relinearization = evk.relinearization;
    if (relinearization) {
      offset = writeSwitchingKeyObject(
        out,
        offset,
        relinearization,
        ObjectType.SwitchingKey,
        0,
        seeded,
        lanes,
      );
    }
    for (const g of evk.galois.values()) {
      offset = writeSwitchingKeyObject(
        out,
        offset,
        g.key,
        ObjectType.GaloisKey,
        g.galoisElement,
        seeded,
        lanes,
      );
    }
    return offset;
  });
  return out;
}

function readSwitchingKey<T>(
  params: Parameters,
  header: ObjectHeader,
  bytes: Uint8Array,
  wrap: (key: SwitchingKey) => T,
): T {
  const moduli = params.moduliQPAtLevel(header.level);
  const reader = new BodyReader(bytes, header, params.context);
  return reader.run(
    () => {
      const bs: Poly[] = [];
      const as: Poly[] = [];
      for (let j = 0; j < header.count; j++) {
        bs.push(reader.poly(moduli, true, `digit ${j} b`));
        if (!header.seeded) as.push(reader.poly(moduli, true, `digit ${j} a`));
      }
      return { bs, as, seed: reader.seed() };
    },
    ({ bs, as, seed }) => {
      if (header.seeded) {
        for (let j = 0; j < header.count; j++) as.push(reader.expandedKey(params, header.level, seed, j));
      }
      const key = new SwitchingKey(
        params,
        bs.map((b, j) => ({ b, a: as[j] })),
        seed,
      );
      return wrap(key);
    },
  );
}

/**
 * Deserializes a key-switching key (e.g. the relinearization key) made with `params`; a seeded one has every
 * a_j re-expanded from its seed.
 *
 * @throws {FormatError} for bytes that are truncated, corrupted, of another type or version, or inconsistent.
 * @throws {MismatchError} for a key made with other parameters.
 * @example
 * ```ts
 * const relin = deserializeSwitchingKey(params, bytes);
 * ```
 */
export function deserializeSwitchingKey(params: Parameters, bytes: Uint8Array): SwitchingKey {
  const header = open(params, bytes, [ObjectType.SwitchingKey]);
  return readSwitchingKey(params, header, bytes, (key) => key);
}

/**
 * Deserializes a Galois key made with `params`.
 *
 * @throws {FormatError} for bytes that are truncated, corrupted, of another type or version, or inconsistent.
 * @throws {MismatchError} for a key made with other parameters.
 * @example
 * ```ts
 * const rotationKey = deserializeGaloisKey(params, bytes);
 * ```
 */
export function deserializeGaloisKey(params: Parameters, bytes: Uint8Array): GaloisKey {
  const header = open(params, bytes, [ObjectType.GaloisKey]);
  return readSwitchingKey(params, header, bytes, (key) => new GaloisKey(header.galoisElement, key));
}

/**
 * Bytes of the key object at the start of `rest` (the rest of a set's body), from its own header: checked to fit
 * in `rest`, so a corrupted length cannot reach past the set.
 */
function entryLength(rest: Uint8Array, params: Parameters, seeded: boolean): number {
  const minimum = HEADER_BYTES + CHECKSUM_BYTES;
  if (rest.length < minimum) {
    throw formatError(
      'serialized object',
      'length',
      `${rest.length} bytes left in the set`,
      `at least ${minimum}`,
    );
  }
  const header = readHeader(rest);
  if (header.totalLength > rest.length) {
    throw formatError(
      header.typeName,
      'length',
      `${header.totalLength} bytes`,
      `at most the ${rest.length} bytes left in the set (body lengths of a ${seeded ? 'seeded ' : ''}key under ` +
        `parameters ${params.id} are at most ${switchingKeyObjectBytes(params, seeded) - minimum})`,
    );
  }
  return header.totalLength;
}

/**
 * Deserializes an evaluation-key set made with `params`: at most one relinearization key (first) and Galois
 * keys with distinct Galois elements, all plain or all seeded.
 *
 * @throws {FormatError} for bytes that are truncated, corrupted, of another type or version, or inconsistent.
 * @throws {MismatchError} for keys made with other parameters.
 * @example
 * ```ts
 * const evaluator = new Evaluator(params, deserializeEvaluationKeys(params, bytes));
 * ```
 */
export function deserializeEvaluationKeys(params: Parameters, bytes: Uint8Array): EvaluationKeys {
  const header = open(params, bytes, [ObjectType.EvaluationKeys]);
  // The container's checksum covers every entry: check it before any entry is parsed.
  verifyWholeChecksum(bytes, header, params.context);
  const parsed: SwitchingKey[] = [];
  const bodyEnd = HEADER_BYTES + header.bodyLength;
  try {
    let relinearization: SwitchingKey | undefined;
    const galois = new Map<number, GaloisKey>();
    let start = HEADER_BYTES;
    for (let i = 0; i < header.count; i++) {
      const what = `evaluation keys entry ${i}`;
      try {
        // Each entry is a complete key object at its own level: its header says how long it is.
        const entryBytes = entryLength(bytes.subarray(start, bodyEnd), params, header.seeded);
        const entry = bytes.subarray(start, start + entryBytes);
        start += entryBytes;
        const allowed = i === 0 ? [ObjectType.SwitchingKey, ObjectType.GaloisKey] : [ObjectType.GaloisKey];
        const entryHeader = open(params, entry, allowed);
        if (entryHeader.seeded !== header.seeded) {
          throw formatError(
            entryHeader.typeName,
            'seeded flag',
            entryHeader.seeded ? 'set' : 'clear',
            `the container's (${header.seeded ? 'set' : 'clear'})`,
          );
        }
        if (entryHeader.type === ObjectType.GaloisKey && galois.has(entryHeader.galoisElement)) {
          throw formatError(
            entryHeader.typeName,
            'Galois element',
            entryHeader.galoisElement,
            'one not seen before in the set',
          );
        }
        const key = readSwitchingKey(params, entryHeader, entry, (k) => k);
        parsed.push(key);
        if (entryHeader.type === ObjectType.SwitchingKey) relinearization = key;
        else galois.set(entryHeader.galoisElement, new GaloisKey(entryHeader.galoisElement, key));
      } catch (error) {
        if (error instanceof FormatError) throw new FormatError(`${what}: ${error.message}`);
        if (error instanceof MismatchError) throw new MismatchError(`${what}: ${error.message}`);
        throw error;
      }
    }
    if (start !== bodyEnd) {
      throw formatError(
        'evaluation keys',
        'body length',
        `${header.bodyLength} bytes`,
        `${start - HEADER_BYTES}, the sum of its ${header.count} entries`,
      );
    }
    return new EvaluationKeys(relinearization, galois.values());
  } catch (error) {
    for (const key of parsed) key.dispose();
    throw error;
  }
}
