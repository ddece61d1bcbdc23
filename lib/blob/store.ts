/**
 * Where uploaded files live. Keys are opaque strings of `[A-Za-z0-9/_.-]`
 * (`uploads/2025/01/<uuid>`): a local directory today, an S3 bucket later,
 * with the same contract.
 */
export interface BlobInfo {
  key: string;
  size: number;
  /** Lowercase hex SHA-256 of the content. */
  sha256: string;
}

export interface BlobListEntry {
  key: string;
  modifiedAt: Date;
  size: number;
}

export interface BlobStore {
  /**
   * Streams `body` into the store under `key` (replacing any blob there) and resolves
   * with its size and SHA-256. Rejects with BlobTooLargeError, and stores nothing, as
   * soon as more than `maxBytes` arrive; the body is not read further (a Node stream is
   * destroyed). If `body` fails, rejects with that same error and stores nothing.
   * Atomic: readers see the old blob or the whole new one, never a partial one.
   */
  put(key: string, body: NodeJS.ReadableStream | AsyncIterable<Uint8Array>, opts: { maxBytes: number }): Promise<BlobInfo>;
  /**
   * A local filesystem path to read the blob from: for a local store the file itself
   * (do not modify or delete it); a remote store would download to a temporary file.
   * Rejects with BlobNotFoundError.
   */
  localPath(key: string): Promise<string>;
  /** The blob's content; the stream fails with BlobNotFoundError if there is none. */
  read(key: string): NodeJS.ReadableStream;
  exists(key: string): Promise<boolean>;
  /** Idempotent: deleting a missing blob succeeds. */
  delete(key: string): Promise<void>;
  /**
   * Every blob whose key starts with `prefix` (a plain string prefix, as in S3, not a
   * directory), in no particular order. Sweepers filter on `modifiedAt` to find
   * abandoned uploads older than a cutoff.
   */
  list(prefix: string): AsyncIterable<BlobListEntry>;
}

export class BlobTooLargeError extends Error {
  override name = 'BlobTooLargeError';
  constructor(readonly maxBytes: number) {
    super(`Blob larger than ${maxBytes} bytes`);
  }
}

export class BlobNotFoundError extends Error {
  override name = 'BlobNotFoundError';
  constructor(readonly key: string) {
    super(`No blob with key "${key}"`);
  }
}

/** A key (or list prefix) that is not allowed: a programming error, never user input. */
export class InvalidBlobKeyError extends Error {
  override name = 'InvalidBlobKeyError';
}

export const MAX_KEY_LENGTH = 512;
const MAX_SEGMENT_LENGTH = 200;
const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;

/**
 * Keys are `/`-separated segments of `[A-Za-z0-9_.-]`, none empty and none starting
 * with a dot (so no `.`, `..` or hidden names), at most 512 characters. Such a key can
 * be used as a relative path without escaping its root, and as an S3 key unchanged.
 */
export function assertValidKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new InvalidBlobKeyError(`Blob key must be 1 to ${MAX_KEY_LENGTH} characters`);
  }
  for (const segment of key.split('/')) {
    if (segment.length > MAX_SEGMENT_LENGTH || !SEGMENT.test(segment)) {
      throw new InvalidBlobKeyError(`Invalid blob key "${key.slice(0, 100)}"`);
    }
  }
}

/** A list prefix: empty, or a key, or a key followed by `/` or by the start of a segment. */
export function assertValidPrefix(prefix: string): void {
  if (prefix === '') return;
  if (prefix.length > MAX_KEY_LENGTH || !/^[A-Za-z0-9/_.-]+$/.test(prefix)) {
    throw new InvalidBlobKeyError(`Invalid blob key prefix "${prefix.slice(0, 100)}"`);
  }
  const segments = prefix.split('/');
  // Every segment but the last must be complete and valid; the last may be empty (trailing slash) or partial.
  for (const segment of segments.slice(0, -1)) {
    if (!SEGMENT.test(segment)) throw new InvalidBlobKeyError(`Invalid blob key prefix "${prefix.slice(0, 100)}"`);
  }
  const last = segments[segments.length - 1]!;
  if (last.startsWith('.')) throw new InvalidBlobKeyError(`Invalid blob key prefix "${prefix.slice(0, 100)}"`);
}
