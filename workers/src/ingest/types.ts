/** Shapes shared by the ingestion pipeline: parsing (parse.ts, parse-child.ts) and chunking (chunk.ts). */

export type DocumentFormat = 'PDF' | 'MARKDOWN' | 'TEXT' | 'HTML';
export const DOCUMENT_FORMATS: readonly DocumentFormat[] = ['PDF', 'MARKDOWN', 'TEXT', 'HTML'];

export interface ParsedPage {
  /** 1-based. */
  page: number;
  /** Plain text with light Markdown structure: `#` heading lines, blank lines between paragraphs. */
  text: string;
}

export interface ParsedDocument {
  format: DocumentFormat;
  /** Every page in order, empty pages included, so that page numbers stay those of the file. */
  pages: ParsedPage[];
  title?: string;
}

export type IngestErrorCode = 'ENCRYPTED_PDF' | 'MALFORMED_FILE' | 'NO_TEXT' | 'TOO_LARGE' | 'UNSUPPORTED_TYPE' | 'TIMEOUT';
export const INGEST_ERROR_CODES: readonly IngestErrorCode[] = [
  'ENCRYPTED_PDF',
  'MALFORMED_FILE',
  'NO_TEXT',
  'TOO_LARGE',
  'UNSUPPORTED_TYPE',
  'TIMEOUT',
];

/**
 * An expected, permanent failure of one document: retrying will not help. `message` is written
 * for the teacher who uploaded the file; technical detail, when there is any, is in `cause`.
 */
export class IngestError extends Error {
  override readonly name = 'IngestError';
  constructor(
    readonly code: IngestErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export function isIngestErrorCode(value: unknown): value is IngestErrorCode {
  return typeof value === 'string' && (INGEST_ERROR_CODES as readonly string[]).includes(value);
}

export interface Chunk {
  /** 0-based, in document order. */
  position: number;
  /** Exactly `fullText(doc).slice(charStart, charEnd)`: no whitespace is rewritten. */
  text: string;
  pageStart: number;
  pageEnd: number;
  /** Offsets into the document's full text: its pages' texts joined by "\n\n" in page order (see `fullText`). */
  charStart: number;
  charEnd: number;
  /** The nearest heading above the chunk, without its `#` marks; null before the first heading. */
  heading: string | null;
}
