/**
 * Contracts of the tutor, shared by the engines (offline and model), the answer
 * worker and the chat subgraph.
 */

export type TutorMode = 'EXPLAIN' | 'SOCRATIC';

/** A retrieved passage as the tutor sees it, numbered from 1 in the order given to the engine. */
export interface TutorPassage {
  /** 1-based; what `[n]` markers refer to. */
  n: number;
  chunkId: string;
  documentId: string;
  documentTitle: string;
  pageStart: number;
  pageEnd: number;
  heading: string | null;
  text: string;
  /** The retrieval score (BM25 or RRF); comparable only within one search. */
  score: number;
}

export interface HistoryTurn {
  role: 'USER' | 'ASSISTANT';
  content: string;
}

export interface Citation {
  /** The `[n]` marker in the answer's content. */
  index: number;
  chunkId: string;
  documentId: string;
  pageStart: number;
  pageEnd: number;
  /**
   * The sentence of the passage the answer relies on, verbatim (as `splitSentences` normalises it:
   * line breaks as spaces, hyphenated line ends joined). In an offline SOCRATIC hint, the same
   * sentence with its answer term blanked as `_____`, so the hint does not give the answer away.
   */
  quote: string;
}

/** An answer with its markers checked against the passages it was given. */
export interface GroundedAnswer {
  content: string;
  citations: Citation[];
  /** At least one valid citation. */
  grounded: boolean;
  /** Markers that named no given passage, removed from `content`. */
  droppedMarkers: number;
}

/** One OpenAI-style chat message, as the model module takes them. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}
