/**
 * The client's cryptography for a served model. The code lives in the browser-safe client layer
 * (`src/client/model-crypto.ts`, exported as `home-he/client`); this module keeps the server-side imports working.
 */
export { ModelCrypto, normalizeImages } from '../client/model-crypto.ts';
