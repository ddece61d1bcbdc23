import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import {
  assertValidKey,
  assertValidPrefix,
  BlobNotFoundError,
  BlobTooLargeError,
  type BlobInfo,
  type BlobListEntry,
  type BlobStore,
} from './store.js';

const FILE_MODE = 0o640;
const DIR_MODE = 0o750;
/** Temporary files start with a dot: no valid key does, so readers and `list` never see them. */
const TEMP_PREFIX = '.tmp-';

/**
 * Blobs as files under `rootDir`, one per key (`uploads/2025/01/<uuid>` is
 * `<rootDir>/uploads/2025/01/<uuid>`). Writes go to a temporary file in the
 * same directory, are fsynced, then renamed over the key.
 */
export function createLocalBlobStore(rootDir: string): BlobStore {
  const root = resolve(rootDir);

  const pathOf = (key: string): string => {
    assertValidKey(key);
    const path = join(root, key);
    // Belt and braces: a valid key cannot escape, but never trust one check.
    if (!path.startsWith(root + sep)) throw new Error(`blob key escapes the store: ${key}`);
    return path;
  };

  return {
    async put(key, body, { maxBytes }) {
      const path = pathOf(key);
      const dir = dirname(path);
      await mkdir(dir, { recursive: true, mode: DIR_MODE });
      const temp = join(dir, `${TEMP_PREFIX}${randomUUID()}`);
      const hash = createHash('sha256');
      let size = 0;
      let file: FileHandle | undefined = await open(temp, 'wx', FILE_MODE);
      try {
        await file.chmod(FILE_MODE); // whatever the umask
        for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
          const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          size += bytes.byteLength;
          // Leaving the loop destroys a Node stream: nothing more is read.
          if (size > maxBytes) throw new BlobTooLargeError(maxBytes);
          hash.update(bytes);
          await writeAll(file, bytes);
        }
        await file.sync();
        await file.close();
        file = undefined;
        await rename(temp, path);
      } catch (err) {
        await file?.close().catch(() => {});
        await unlink(temp).catch(() => {});
        throw err;
      }
      await syncDir(dir);
      return { key, size, sha256: hash.digest('hex') } satisfies BlobInfo;
    },

    async localPath(key) {
      const path = pathOf(key);
      if (!(await isFile(path))) throw new BlobNotFoundError(key);
      return path;
    },

    read(key) {
      const path = pathOf(key);
      async function* content() {
        let file: FileHandle;
        try {
          file = await open(path, 'r');
        } catch (err) {
          throw isMissing(err) ? new BlobNotFoundError(key) : err;
        }
        try {
          // Ends early (and closes the file) when the reader destroys the stream.
          for await (const chunk of file.createReadStream({ autoClose: false })) yield chunk as Buffer;
        } finally {
          await file.close();
        }
      }
      return Readable.from(content(), { objectMode: false });
    },

    async exists(key) {
      return isFile(pathOf(key));
    },

    async delete(key) {
      try {
        await unlink(pathOf(key));
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
      // Empty directories are left: removing one could race with a put creating a file in it.
    },

    list(prefix) {
      assertValidPrefix(prefix);
      const slash = prefix.lastIndexOf('/');
      const base = slash < 0 ? '' : prefix.slice(0, slash);
      return walk(root, base, prefix);
    },
  };
}

async function writeAll(file: FileHandle, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.byteLength) {
    const { bytesWritten } = await file.write(bytes, offset, bytes.byteLength - offset);
    offset += bytesWritten;
  }
}

/** Makes a rename durable. Best effort: some platforms cannot open a directory. */
async function syncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // ignored
  } finally {
    await handle?.close().catch(() => {});
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Files under `root/dir` (recursively) whose keys start with `prefix`; skips temporary files and entries that vanish meanwhile. */
async function* walk(root: string, dir: string, prefix: string): AsyncGenerator<BlobListEntry> {
  let entries;
  try {
    entries = await readdir(dir ? join(root, dir) : root, { withFileTypes: true });
  } catch (err) {
    if (isMissing(err)) return;
    throw err;
  }
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const key = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      // Descend only where keys can still match the prefix.
      if (prefix.startsWith(`${key}/`) || key.startsWith(prefix)) yield* walk(root, key, prefix);
    } else if (entry.isFile() && key.startsWith(prefix)) {
      try {
        const info = await stat(join(root, key));
        yield { key, modifiedAt: info.mtime, size: info.size };
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    }
  }
}
