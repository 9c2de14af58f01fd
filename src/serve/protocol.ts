/**
 * The binary tensor data extension, as the server uses it. The code lives in the browser-safe client layer
 * (`src/client/protocol.ts`), which encodes requests and decodes responses with the same functions.
 */
export {
  type DecodedMessage,
  decodeBytesTensor,
  decodeMessage,
  encodeBytesTensor,
  encodeMessage,
  encodeMessageParts,
  HEADER_LENGTH,
  type TensorHeader,
} from '../client/protocol.ts';
