/** What the teacher reads when a document cannot be ingested: plain words, and what to do next. */
export const MESSAGES = {
  encrypted:
    'This PDF is protected with a password, so its text cannot be read. Save a copy without the password (for example with "Print to PDF") and upload that.',
  malformedPdf:
    'This PDF file is damaged or is not really a PDF, so its text cannot be read. Try exporting it again from the program that made it.',
  malformedFile: 'This file could not be read. It may be damaged.',
  notUtf8:
    'This file is not valid UTF-8 text. Save it again with UTF-8 encoding (most editors offer this under "Save as") and upload it again.',
  binary: 'This file contains binary data, not text. Upload it as a PDF, Markdown, HTML or plain-text file.',
  pdfAsText: 'This file is a PDF but was uploaded as text. Upload it as a PDF.',
  archiveAsText:
    'This file is a compressed archive (Word, PowerPoint and other Office files are such archives), not text. Save it as PDF and upload that.',
  timeout:
    'Reading this file took too long, so it was stopped. Split it into smaller files, or save it again (for example with "Print to PDF") and upload that.',
  memory: 'Reading this file needed more memory than allowed, so it was stopped. Split it into smaller files and upload those.',
  crashed: 'This file made the document reader fail. It may be damaged: save it again from the program that made it and upload that.',
  noTextPdf:
    'This PDF has no text layer (it may be a scanned image), and reading scanned pages (OCR) is turned off on this server. Upload a PDF with selectable text, or ask your administrator to turn OCR on.',
  unreadablePdf:
    'The text in this PDF cannot be extracted: its fonts do not say which letters they draw, so the text comes out as garbage, and reading such pages as images (OCR) is turned off on this server. Save it again (for example with "Print to PDF" from another program) or upload the source document.',
  ocrBlank:
    'This PDF has no text layer (it may be a scanned image), and OCR found no text on its pages: they look blank. Check that the right file was scanned, or upload a PDF with selectable text.',
  ocrUnreadable: (pages: number) =>
    `This PDF has no usable text layer, and OCR could not read ${pages === 1 ? '1 page' : `${pages} pages`} of it well enough (too little text, too low a confidence, or too slow). Scan it again more clearly (300 dpi, straight, good contrast) or upload a PDF with selectable text.`,
  noText: 'This file contains no text.',
  tooManyPages: (pages: number, max: number) =>
    `This document has ${pages} pages; the limit is ${max}. Split it into smaller files and upload those.`,
  tooManyChars: (max: number) =>
    `This document has more than ${max.toLocaleString('en')} characters of text, the limit. Split it into smaller files and upload those.`,
} as const;

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const SKIPPED_LISTED = 10;

/** What a completed ingestion task says: passages and pages, then how many pages OCR read, and which it skipped. */
export function completionMessage(
  chunks: number,
  pages: number,
  ocr: { pages: number[]; confidence: number | null; skipped: { page: number }[] },
): string {
  let message = `${plural(chunks, 'passage')} from ${plural(pages, 'page')}`;
  const notes: string[] = [];
  if (ocr.pages.length) {
    notes.push(`${plural(ocr.pages.length, 'page')} read by OCR, mean confidence ${Math.round(ocr.confidence ?? 0)}%`);
  }
  if (ocr.skipped.length) {
    const listed = ocr.skipped.slice(0, SKIPPED_LISTED).map((s) => s.page);
    const more = ocr.skipped.length > SKIPPED_LISTED ? ', …' : '';
    notes.push(
      `${plural(ocr.skipped.length, 'page')} skipped: OCR found too little text, too low a confidence or took too long (${ocr.skipped.length === 1 ? 'page' : 'pages'} ${listed.join(', ')}${more})`,
    );
  }
  if (notes.length) message += ` (${notes.join('; ')})`;
  return message;
}
