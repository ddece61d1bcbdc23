import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkHandlers } from './runner.js';

describe('job handler registry', () => {
  const noop = async () => 'ok';

  it('accepts exactly one handler per job name', () => {
    assert.doesNotThrow(() => checkHandlers({ INGEST_DOCUMENT: noop, REINDEX_COURSE: noop }));
  });

  it('refuses to start when a job has no handler or a handler has no job', () => {
    assert.throws(() => checkHandlers({}), /missing \[INGEST_DOCUMENT, REINDEX_COURSE\]/);
    assert.throws(() => checkHandlers({ INGEST_DOCUMENT: noop, REINDEX_COURSE: noop, SEND_EMAIL: noop }), /unknown \[SEND_EMAIL\]/);
    assert.throws(() => checkHandlers({ INGEST_DOCUMENT: 'not a function', REINDEX_COURSE: noop }), /missing \[INGEST_DOCUMENT\]/);
  });
});
