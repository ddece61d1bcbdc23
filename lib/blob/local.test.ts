import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createLocalBlobStore } from './local.js';
import { BlobNotFoundError, BlobTooLargeError, InvalidBlobKeyError, type BlobStore } from './store.js';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** Every file under `dir`, temporary ones included, as paths relative to it. */
async function allFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

/** Yields `chunks` chunks of `size` random bytes, counting how many were pulled. */
function source(chunks: number, size: number) {
  const pulled = { chunks: 0 };
  async function* gen() {
    for (let i = 0; i < chunks; i++) {
      pulled.chunks++;
      yield randomBytes(size);
    }
  }
  return { body: gen(), pulled };
}

describe('local blob store', () => {
  let root: string;
  let store: BlobStore;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'blob-test-'));
    store = createLocalBlobStore(root);
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('stores a stream and reads it back, with its size and SHA-256', async () => {
    const data = randomBytes(300_000);
    const info = await store.put('uploads/2025/01/round-trip', Readable.from([data.subarray(0, 1000), data.subarray(1000)]), {
      maxBytes: 1_000_000,
    });
    expect(info).toStrictEqual({ key: 'uploads/2025/01/round-trip', size: data.length, sha256: sha256(data) });
    expect(await store.exists('uploads/2025/01/round-trip')).toBe(true);

    const chunks: Buffer[] = [];
    for await (const chunk of store.read('uploads/2025/01/round-trip')) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks)).toStrictEqual(data);

    const path = await store.localPath('uploads/2025/01/round-trip');
    expect(path).toBe(join(root, 'uploads/2025/01/round-trip'));
    expect(await readFile(path)).toStrictEqual(data);
    expect((await stat(path)).mode & 0o777).toBe(0o640);
  });

  it('accepts an async iterable of Uint8Array and an empty body', async () => {
    const info = await store.put('plain/iterable', source(3, 10).body, { maxBytes: 30 });
    expect(info.size).toBe(30);
    const empty = await store.put('plain/empty', Readable.from([]), { maxBytes: 10 });
    expect(empty).toStrictEqual({ key: 'plain/empty', size: 0, sha256: sha256(new Uint8Array()) });
  });

  it('replaces an existing blob as a whole', async () => {
    await store.put('replace/me', Readable.from([Buffer.from('first version')]), { maxBytes: 100 });
    await store.put('replace/me', Readable.from([Buffer.from('second')]), { maxBytes: 100 });
    expect(await text(store.read('replace/me'))).toBe('second');
  });

  it('rejects with BlobTooLargeError as soon as the limit is crossed, reads no further and leaves no file', async () => {
    const { body, pulled } = source(100, 1000);
    const put = store.put('big/one', body, { maxBytes: 2500 });
    await expect(put).rejects.toThrow(BlobTooLargeError);
    await expect(put).rejects.toMatchObject({ maxBytes: 2500 });
    expect(pulled.chunks).toBe(3);
    expect(await store.exists('big/one')).toBe(false);
    expect(await allFiles(join(root, 'big'))).toStrictEqual([]);
  });

  it('accepts a body of exactly maxBytes', async () => {
    const info = await store.put('big/exact', source(5, 100).body, { maxBytes: 500 });
    expect(info.size).toBe(500);
  });

  it('destroys a Node stream body that is too large and keeps an older blob with that key', async () => {
    await store.put('big/kept', Readable.from([Buffer.from('old')]), { maxBytes: 100 });
    const stream = Readable.from(
      (function* () {
        for (let i = 0; i < 1000; i++) yield Buffer.alloc(64, i);
      })(),
    );
    await expect(store.put('big/kept', stream, { maxBytes: 100 })).rejects.toThrow(BlobTooLargeError);
    expect(stream.destroyed).toBe(true);
    expect(await text(store.read('big/kept'))).toBe('old');
    expect(await allFiles(join(root, 'big'))).toStrictEqual(['exact', 'kept']);
  });

  it('rejects with the body error when the body fails, leaving no file', async () => {
    const boom = new Error('client went away');
    async function* failing() {
      yield Buffer.from('partial');
      throw boom;
    }
    await expect(store.put('failing/one', failing(), { maxBytes: 100 })).rejects.toBe(boom);
    expect(await allFiles(join(root, 'failing'))).toStrictEqual([]);
  });

  it('refuses keys that could escape the root or are not plain', async () => {
    const bad = [
      '',
      '../escape',
      'uploads/../../escape',
      '/etc/passwd',
      'a//b',
      'a/',
      '/a',
      'a/./b',
      '.hidden',
      'a/.tmp-x',
      'a\\b',
      'a b',
      'caf\u00e9',
      'a\0b',
      'x'.repeat(513),
      `${'x'.repeat(201)}/a`,
    ];
    /** How a call ended: 'refused' for an InvalidBlobKeyError, thrown at once (sync) or as a rejection (async). */
    const syncOutcome = (call: () => unknown) => {
      try {
        call();
        return 'accepted';
      } catch (err) {
        return err instanceof InvalidBlobKeyError ? 'refused' : `failed otherwise: ${String(err)}`;
      }
    };
    const asyncOutcome = (call: () => Promise<unknown>) =>
      call().then(
        () => 'accepted',
        (err: unknown) => (err instanceof InvalidBlobKeyError ? 'refused' : `failed otherwise: ${String(err)}`),
      );
    for (const key of bad) {
      // The key beside each outcome, so a failure names the key and the method.
      expect({
        key,
        put: await asyncOutcome(() => store.put(key, Readable.from([]), { maxBytes: 10 })),
        exists: await asyncOutcome(() => store.exists(key)),
        delete: await asyncOutcome(() => store.delete(key)),
        localPath: await asyncOutcome(() => store.localPath(key)),
        read: syncOutcome(() => store.read(key)),
      }).toStrictEqual({ key, put: 'refused', exists: 'refused', delete: 'refused', localPath: 'refused', read: 'refused' });
    }
    expect(() => store.list('../')).toThrow(InvalidBlobKeyError);
    expect(() => store.list('a/../')).toThrow(InvalidBlobKeyError);
    expect(() => store.list('/abs')).toThrow(InvalidBlobKeyError);
  });

  it('deletes idempotently, and reports missing blobs as BlobNotFoundError', async () => {
    await store.put('gone/soon', Readable.from([Buffer.from('x')]), { maxBytes: 10 });
    await store.delete('gone/soon');
    await store.delete('gone/soon');
    await store.delete('never/existed/at-all');
    expect(await store.exists('gone/soon')).toBe(false);
    await expect(store.localPath('gone/soon')).rejects.toThrow(BlobNotFoundError);
    await expect(text(store.read('gone/soon'))).rejects.toThrow(BlobNotFoundError);
    // A key whose parent is a file is simply absent.
    await store.put('gone/file', Readable.from([Buffer.from('x')]), { maxBytes: 10 });
    expect(await store.exists('gone/file/child')).toBe(false);
    await store.delete('gone/file/child');
  });

  it('stores concurrent puts of different keys intact', async () => {
    const blobs = Array.from({ length: 20 }, (_, i) => ({ key: `concurrent/${i % 3}/blob-${i}`, data: randomBytes(20_000 + i * 997) }));
    const infos = await Promise.all(
      blobs.map(({ key, data }) =>
        store.put(key, Readable.from([data.subarray(0, 5000), data.subarray(5000, 15000), data.subarray(15000)]), {
          maxBytes: 100_000,
        }),
      ),
    );
    for (const [i, { key, data }] of blobs.entries()) {
      expect(infos[i]).toStrictEqual({ key, size: data.length, sha256: sha256(data) });
      expect(await readFile(join(root, key))).toStrictEqual(data);
    }
    expect((await allFiles(join(root, 'concurrent'))).length).toBe(20);
  });

  it('lists blobs under a prefix with size and modification time, skipping temporary files', async () => {
    const listRoot = await mkdtemp(join(tmpdir(), 'blob-list-'));
    try {
      const s = createLocalBlobStore(listRoot);
      expect(await collect(s.list(''))).toStrictEqual([]);
      for (const key of ['uploads/2025/01/a', 'uploads/2025/02/b', 'uploads/2025/02/c', 'uploadsX/d', 'other/e']) {
        await s.put(key, Readable.from([Buffer.from(key)]), { maxBytes: 100 });
      }
      const old = new Date('2024-01-01T00:00:00Z');
      await utimes(join(listRoot, 'uploads/2025/01/a'), old, old);
      // A put in progress elsewhere must not show up.
      const pending = (async function* () {
        yield Buffer.from('in progress');
        await new Promise(() => {});
      })();
      void s.put('uploads/2025/02/pending', pending, { maxBytes: 100 });
      await new Promise((r) => setTimeout(r, 50));

      const all = await collect(s.list('uploads/'));
      expect(all.map((e) => e.key).sort()).toStrictEqual(['uploads/2025/01/a', 'uploads/2025/02/b', 'uploads/2025/02/c']);
      const a = all.find((e) => e.key === 'uploads/2025/01/a')!;
      expect(a.size).toBe('uploads/2025/01/a'.length);
      expect(a.modifiedAt.getTime()).toBe(old.getTime());

      expect((await collect(s.list('uploads'))).map((e) => e.key).sort()).toStrictEqual([
        'uploads/2025/01/a',
        'uploads/2025/02/b',
        'uploads/2025/02/c',
        'uploadsX/d',
      ]);
      expect((await collect(s.list('uploads/2025/02/'))).map((e) => e.key).sort()).toStrictEqual([
        'uploads/2025/02/b',
        'uploads/2025/02/c',
      ]);
      expect((await collect(s.list('uploads/2025/02/b'))).map((e) => e.key)).toStrictEqual(['uploads/2025/02/b']);
      expect(await collect(s.list('nothing/here/'))).toStrictEqual([]);
      expect((await collect(s.list(''))).length).toBe(5);

      const cutoff = new Date('2025-01-01T00:00:00Z');
      expect((await collect(s.list('uploads/'))).filter((e) => e.modifiedAt < cutoff).map((e) => e.key)).toStrictEqual([
        'uploads/2025/01/a',
      ]);
    } finally {
      await rm(listRoot, { recursive: true, force: true });
    }
  });
});

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}
