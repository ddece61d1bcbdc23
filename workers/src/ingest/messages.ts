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
  noTextPdf: 'This PDF has no text layer (it may be a scanned image). OCR is not supported yet: upload a PDF with selectable text.',
  unreadablePdf:
    'The text in this PDF cannot be extracted: its fonts do not say which letters they draw, so the text comes out as garbage. Save it again (for example with "Print to PDF" from another program) or upload the source document.',
  noText: 'This file contains no text.',
  tooManyPages: (pages: number, max: number) =>
    `This document has ${pages} pages; the limit is ${max}. Split it into smaller files and upload those.`,
  tooManyChars: (max: number) =>
    `This document has more than ${max.toLocaleString('en')} characters of text, the limit. Split it into smaller files and upload those.`,
} as const;
