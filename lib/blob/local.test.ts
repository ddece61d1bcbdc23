import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
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
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'blob-test-'));
    store = createLocalBlobStore(root);
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('stores a stream and reads it back, with its size and SHA-256', async () => {
    const data = randomBytes(300_000);
    const info = await store.put('uploads/2025/01/round-trip', Readable.from([data.subarray(0, 1000), data.subarray(1000)]), {
      maxBytes: 1_000_000,
    });
    assert.deepEqual(info, { key: 'uploads/2025/01/round-trip', size: data.length, sha256: sha256(data) });
    assert.equal(await store.exists('uploads/2025/01/round-trip'), true);

    const chunks: Buffer[] = [];
    for await (const chunk of store.read('uploads/2025/01/round-trip')) chunks.push(chunk as Buffer);
    assert.deepEqual(Buffer.concat(chunks), data);

    const path = await store.localPath('uploads/2025/01/round-trip');
    assert.equal(path, join(root, 'uploads/2025/01/round-trip'));
    assert.deepEqual(await readFile(path), data);
    assert.equal((await stat(path)).mode & 0o777, 0o640);
  });

  it('accepts an async iterable of Uint8Array and an empty body', async () => {
    const info = await store.put('plain/iterable', source(3, 10).body, { maxBytes: 30 });
    assert.equal(info.size, 30);
    const empty = await store.put('plain/empty', Readable.from([]), { maxBytes: 10 });
    assert.deepEqual(empty, { key: 'plain/empty', size: 0, sha256: sha256(new Uint8Array()) });
  });

  it('replaces an existing blob as a whole', async () => {
    await store.put('replace/me', Readable.from([Buffer.from('first version')]), { maxBytes: 100 });
    await store.put('replace/me', Readable.from([Buffer.from('second')]), { maxBytes: 100 });
    assert.equal(await text(store.read('replace/me')), 'second');
  });

  it('rejects with BlobTooLargeError as soon as the limit is crossed, reads no further and leaves no file', async () => {
    const { body, pulled } = source(100, 1000);
    await assert.rejects(
      store.put('big/one', body, { maxBytes: 2500 }),
      (err) => err instanceof BlobTooLargeError && err.maxBytes === 2500,
    );
    assert.equal(pulled.chunks, 3);
    assert.equal(await store.exists('big/one'), false);
    assert.deepEqual(await allFiles(join(root, 'big')), []);
  });

  it('accepts a body of exactly maxBytes', async () => {
    const info = await store.put('big/exact', source(5, 100).body, { maxBytes: 500 });
    assert.equal(info.size, 500);
  });

  it('destroys a Node stream body that is too large and keeps an older blob with that key', async () => {
    await store.put('big/kept', Readable.from([Buffer.from('old')]), { maxBytes: 100 });
    const stream = Readable.from(
      (function* () {
        for (let i = 0; i < 1000; i++) yield Buffer.alloc(64, i);
      })(),
    );
    await assert.rejects(store.put('big/kept', stream, { maxBytes: 100 }), BlobTooLargeError);
    assert.equal(stream.destroyed, true);
    assert.equal(await text(store.read('big/kept')), 'old');
    assert.deepEqual(await allFiles(join(root, 'big')), ['exact', 'kept']);
  });

  it('rejects with the body error when the body fails, leaving no file', async () => {
    const boom = new Error('client went away');
    async function* failing() {
      yield Buffer.from('partial');
      throw boom;
    }
    await assert.rejects(store.put('failing/one', failing(), { maxBytes: 100 }), (err) => err === boom);
    assert.deepEqual(await allFiles(join(root, 'failing')), []);
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
    for (const key of bad) {
      await assert.rejects(store.put(key, Readable.from([]), { maxBytes: 10 }), InvalidBlobKeyError, `put ${JSON.stringify(key)}`);
      await assert.rejects(store.exists(key), InvalidBlobKeyError, `exists ${JSON.stringify(key)}`);
      await assert.rejects(store.delete(key), InvalidBlobKeyError, `delete ${JSON.stringify(key)}`);
      await assert.rejects(store.localPath(key), InvalidBlobKeyError, `localPath ${JSON.stringify(key)}`);
      assert.throws(() => store.read(key), InvalidBlobKeyError, `read ${JSON.stringify(key)}`);
    }
    assert.throws(() => store.list('../'), InvalidBlobKeyError);
    assert.throws(() => store.list('a/../'), InvalidBlobKeyError);
    assert.throws(() => store.list('/abs'), InvalidBlobKeyError);
  });

  it('deletes idempotently, and reports missing blobs as BlobNotFoundError', async () => {
    await store.put('gone/soon', Readable.from([Buffer.from('x')]), { maxBytes: 10 });
    await store.delete('gone/soon');
    await store.delete('gone/soon');
    await store.delete('never/existed/at-all');
    assert.equal(await store.exists('gone/soon'), false);
    await assert.rejects(store.localPath('gone/soon'), BlobNotFoundError);
    await assert.rejects(text(store.read('gone/soon')), BlobNotFoundError);
    // A key whose parent is a file is simply absent.
    await store.put('gone/file', Readable.from([Buffer.from('x')]), { maxBytes: 10 });
    assert.equal(await store.exists('gone/file/child'), false);
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
      assert.deepEqual(infos[i], { key, size: data.length, sha256: sha256(data) });
      assert.deepEqual(await readFile(join(root, key)), data);
    }
    assert.equal((await allFiles(join(root, 'concurrent'))).length, 20);
  });

  it('lists blobs under a prefix with size and modification time, skipping temporary files', async () => {
    const listRoot = await mkdtemp(join(tmpdir(), 'blob-list-'));
    try {
      const s = createLocalBlobStore(listRoot);
      assert.deepEqual(await collect(s.list('')), []);
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
      assert.deepEqual(all.map((e) => e.key).sort(), ['uploads/2025/01/a', 'uploads/2025/02/b', 'uploads/2025/02/c']);
      const a = all.find((e) => e.key === 'uploads/2025/01/a')!;
      assert.equal(a.size, 'uploads/2025/01/a'.length);
      assert.equal(a.modifiedAt.getTime(), old.getTime());

      assert.deepEqual((await collect(s.list('uploads'))).map((e) => e.key).sort(), [
        'uploads/2025/01/a',
        'uploads/2025/02/b',
        'uploads/2025/02/c',
        'uploadsX/d',
      ]);
      assert.deepEqual((await collect(s.list('uploads/2025/02/'))).map((e) => e.key).sort(), ['uploads/2025/02/b', 'uploads/2025/02/c']);
      assert.deepEqual(
        (await collect(s.list('uploads/2025/02/b'))).map((e) => e.key),
        ['uploads/2025/02/b'],
      );
      assert.deepEqual(await collect(s.list('nothing/here/')), []);
      assert.equal((await collect(s.list(''))).length, 5);

      const cutoff = new Date('2025-01-01T00:00:00Z');
      assert.deepEqual(
        (await collect(s.list('uploads/'))).filter((e) => e.modifiedAt < cutoff).map((e) => e.key),
        ['uploads/2025/01/a'],
      );
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
