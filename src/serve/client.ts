/**
 * The Node side of the client SDK: the code is the browser-safe `home-he/client` (`src/client/`), re-exported here
 * for the CLI and the server's tests.
 */
export {
  type Classification,
  type ClientCrypto,
  type JobStatus,
  type KeyUploadOptions,
  keysGone,
  type ModelMetadata,
  RemoteModel,
  type RepositoryEntry,
  type RetryEvent,
  type RunOptions,
  ServeClient,
  type ServeClientOptions,
  ServerError,
  type StageEvent,
  type Traffic,
} from '../client/index.ts';
