import { describe, expect, it } from '@jest/globals';
import { ZodError } from 'zod';
import { parsePayload } from './contracts.js';

describe('job contracts', () => {
  const good = {
    taskId: '8a0d2f5e-4c1b-4e59-9a67-2b9f0d6f3a10',
    documentId: '0b9c7f3e-2a4d-4f8e-8c1a-5d6e7f8a9b0c',
    courseId: '1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f',
  };

  it('accepts a valid INGEST_DOCUMENT payload and strips unknown fields', () => {
    expect(parsePayload('INGEST_DOCUMENT', { ...good, extra: 'x' })).toStrictEqual(good);
  });

  it('rejects a payload with a missing or malformed id', () => {
    expect(() => parsePayload('INGEST_DOCUMENT', { ...good, taskId: 'not-a-uuid' })).toThrow(ZodError);
    expect(() => parsePayload('INGEST_DOCUMENT', { ...good, taskId: 'not-a-uuid' })).toThrow(/taskId/);
    expect(() => parsePayload('INGEST_DOCUMENT', { documentId: good.documentId, courseId: good.courseId })).toThrow(ZodError);
    expect(() => parsePayload('INGEST_DOCUMENT', { documentId: good.documentId, courseId: good.courseId })).toThrow(/taskId/);
  });
});
