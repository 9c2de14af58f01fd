/**
 * The HE part of a model's metadata. The code lives in the browser-safe client layer (`src/client/he-metadata.ts`):
 * the server describes its programs with it and the client makes keys from the same descriptor.
 */
export {
  checkDescriptor,
  describeProgram,
  type HeModelDescriptor,
  packingProgram,
} from '../client/he-metadata.ts';
