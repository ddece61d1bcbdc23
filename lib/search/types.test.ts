import { describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { chunkIdOf, documentIdOfChunk } from './types.js';

describe('chunk ids', () => {
  it('name their document and position, and give the document back', () => {
    const documentId = randomUUID();
    for (const position of [0, 7, 1234]) {
      expect(chunkIdOf(documentId, position)).toBe(`${documentId}:${position}`);
      expect(documentIdOfChunk(chunkIdOf(documentId, position))).toBe(documentId);
    }
  });
});
