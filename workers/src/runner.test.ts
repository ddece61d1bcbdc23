import { describe, expect, it } from '@jest/globals';
import { checkHandlers } from './runner.js';

describe('job handler registry', () => {
  const noop = async () => 'ok';

  it('accepts exactly one handler per job name', () => {
    expect(() => checkHandlers({ INGEST_DOCUMENT: noop, REINDEX_COURSE: noop, GENERATE_EXAM: noop })).not.toThrow();
  });

  it('refuses to start when a job has no handler or a handler has no job', () => {
    expect(() => checkHandlers({})).toThrow(/missing \[INGEST_DOCUMENT, REINDEX_COURSE, GENERATE_EXAM\]/);
    expect(() => checkHandlers({ INGEST_DOCUMENT: noop, REINDEX_COURSE: noop, GENERATE_EXAM: noop, SEND_EMAIL: noop })).toThrow(
      /unknown \[SEND_EMAIL\]/,
    );
    expect(() => checkHandlers({ INGEST_DOCUMENT: 'not a function', REINDEX_COURSE: noop, GENERATE_EXAM: noop })).toThrow(
      /missing \[INGEST_DOCUMENT\]/,
    );
  });
});
