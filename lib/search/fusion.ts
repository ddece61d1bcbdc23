import { RRF_K, type ScoredChunk } from './types.js';

/**
 * Reciprocal-rank fusion: each ranking adds 1 / (k + rank) for every chunk it
 * holds (rank from 1), k = 60; the Qdrant store requests the same from Qdrant.
 * Ties break by id so the order is deterministic.
 */
export function fuseRrf(rankings: ScoredChunk[][], k = RRF_K): ScoredChunk[] {
  const scores = new Map<string, number>();
  for (const ranking of rankings) {
    ranking.forEach((hit, i) => scores.set(hit.id, (scores.get(hit.id) ?? 0) + 1 / (k + i + 1)));
  }
  return [...scores].map(([id, score]) => ({ id, score })).sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1));
}
