/**
 * The parser process. Reads one untrusted file and streams its text to the parent over IPC:
 *   { type: 'ready' }                       started, before touching the file
 *   { type: 'meta', pages, title? }         then one 'page' message per page (see below)
 *   { type: 'ocr', page }                   OCR of a page starts
 *   { type: 'page', page, text, unreadable?, ocr? }
 *   { type: 'done', maxRssKb }              or, at any point instead,
 *   { type: 'error', code, message, detail? }
 * and exits. It is run by parse.ts, which enforces the memory and time limits and kills it when
 * they are crossed; this process holds no secrets (parse.ts gives it a minimal environment).
 *
 *   node --import tsx workers/src/ingest/parse-child.ts <file> <PDF|MARKDOWN|TEXT|HTML> [maxChars] [ocr]
 *
 * With maxChars, text beyond it is never sent (an error is): the parent checks too, but should
 * not have to receive a huge message first.
 *
 * With `ocr` (OcrChildOptions as JSON), a PDF page without a text layer, or whose text layer is
 * garbage (`unreadable`), is rendered and read by tesseract (ocr-page.ts), up to
 * `ocr.concurrency` pages at once while the text layer of the next pages is read. Pages with a
 * text layer are sent in order as they are read, OCR'd pages as they finish: each page exactly
 * once, but not in page order. An OCR'd page's message says how it went:
 * `ocr: { outcome: 'read', confidence }`, `{ outcome: 'blank' }` (no text found) or
 * `{ outcome: 'skipped', reason }` (too little text, too low a confidence, over its time limit,
 * or the programs failed): the last two with empty text.
 *
 * Without an IPC channel (run by hand as above) the messages are printed as JSON lines.
 */
import { rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { register } from 'node:module';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { htmlToText } from './html-text.js';
import { MESSAGES } from './messages.js';
import type { OcrChildOptions } from './ocr.js';
import { killOcrPrograms, ocrPdfPage } from './ocr-page.js';
import type { OcrOutcome } from './ocr-text.js';
import { pdfPageText, type PdfTextItem } from './pdf-text.js';
import { DOCUMENT_FORMATS, IngestError, type DocumentFormat, type IngestErrorCode } from './types.js';

export type ChildMessage =
  | { type: 'ready' }
  | { type: 'meta'; pages: number; title?: string }
  | { type: 'ocr'; page: number }
  | { type: 'page'; page: number; text: string; unreadable?: boolean; ocr?: OcrOutcome }
  | { type: 'done'; maxRssKb: number }
  | { type: 'error'; code: IngestErrorCode; message: string; detail?: string };

/**
 * Under tsx, every module is transformed on load, pdfjs included (3 MB of JavaScript plus 8 MB
 * of source maps): measured here, that tripled the parser's peak memory (460 MB instead of
 * 155 MB for a 14-page paper) and doubled its time. This hook, registered after tsx's and so
 * consulted first, loads pdfjs's files as they are, without their source-map comments.
 */
const PDFJS_PASSTHROUGH_HOOKS = `
import { readFile } from 'node:fs/promises';
export async function load(url, context, nextLoad) {
  if (url.startsWith('file:') && url.includes('/node_modules/pdfjs-dist/') && url.endsWith('.mjs')) {
    const source = (await readFile(new URL(url), 'utf8')).replace(/\\n\\/\\/# sourceMappingURL=[^\\n]*\\s*$/, '\\n');
    return { format: 'module', source, shortCircuit: true };
  }
  return nextLoad(url, context);
}`;

const CONTROL = /[\u0000-\u0008\u000b\u000e-\u001f\u007f-\u009f]/g;

let maxChars = Number.POSITIVE_INFINITY;
let charBudget = maxChars;

async function sendPage(page: number, text: string, unreadable: boolean, ocr?: OcrOutcome): Promise<void> {
  charBudget -= text.length;
  if (charBudget < 0) {
    throw new IngestError('TOO_LARGE', MESSAGES.tooManyChars(maxChars));
  }
  await send({ type: 'page', page, text, ...(unreadable ? { unreadable } : {}), ...(ocr ? { ocr } : {}) });
}

async function send(message: ChildMessage): Promise<void> {
  if (!process.send) {
    process.stdout.write(`${JSON.stringify(message)}\n`);
    return;
  }
  await new Promise<void>((resolve, reject) => process.send!(message, (err: Error | null) => (err ? reject(err) : resolve())));
}

function cleanTitle(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const title = value.replace(CONTROL, '').replace(/\s+/g, ' ').trim();
  return title ? title.slice(0, 300) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Text formats

/** Bytes of a file uploaded as text: BOM-aware, strict UTF-8 (or the charset an HTML file declares). */
export function decodeText(bytes: Uint8Array, format: DocumentFormat): string {
  const head = Buffer.from(bytes.subarray(0, 8));
  if (head.subarray(0, 5).toString('latin1') === '%PDF-') {
    throw new IngestError('UNSUPPORTED_TYPE', MESSAGES.pdfAsText);
  }
  if (head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) {
    throw new IngestError('UNSUPPORTED_TYPE', MESSAGES.archiveAsText);
  }
  let encoding = 'utf-8';
  let body = bytes;
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) body = bytes.subarray(3);
  else if (head[0] === 0xff && head[1] === 0xfe) [encoding, body] = ['utf-16le', bytes.subarray(2)];
  else if (head[0] === 0xfe && head[1] === 0xff) [encoding, body] = ['utf-16be', bytes.subarray(2)];
  else if (format === 'HTML') {
    const declared = /<meta[^>]+charset\s*=\s*["']?\s*([\w-]+)/i.exec(Buffer.from(bytes.subarray(0, 2048)).toString('latin1'))?.[1];
    if (declared) {
      try {
        encoding = new TextDecoder(declared).encoding;
      } catch {
        // an unknown label: try UTF-8
      }
    }
  }
  if (encoding === 'utf-8' && body.includes(0)) throw new IngestError('UNSUPPORTED_TYPE', MESSAGES.binary);
  let text: string;
  try {
    text = new TextDecoder(encoding, { fatal: true }).decode(body);
  } catch (err) {
    throw new IngestError('MALFORMED_FILE', MESSAGES.notUtf8, { cause: err });
  }
  const controls = text.match(CONTROL)?.length ?? 0;
  if (text.includes('\u0000') || controls > 0.05 * text.length) throw new IngestError('UNSUPPORTED_TYPE', MESSAGES.binary);
  return text
    .replace(/\r\n?/g, '\n')
    .replace(/\f/g, '\n\n')
    .replace(CONTROL, '')
    .replace(/[ \t]+$/gm, '');
}

/** The Markdown document's title: `title:` in front matter, else its first `# ` heading outside code fences. */
export function markdownTitle(text: string): string | undefined {
  const front = /^---\n([\s\S]*?)\n---\n/.exec(text);
  const fromFront = front && /^title:\s*["']?(.+?)["']?\s*$/m.exec(front[1]!)?.[1];
  if (fromFront) return cleanTitle(fromFront);
  let fence: string | null = null;
  for (const line of text.split('\n')) {
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (marker && (fence === null || (marker[0] === fence[0] && marker.length >= fence.length))) {
      fence = fence === null ? marker : null;
      continue;
    }
    if (fence !== null) continue;
    const heading = /^ {0,3}#\s+(.+?)(?:\s+#+)?\s*$/.exec(line)?.[1];
    if (heading) return cleanTitle(heading);
  }
  return undefined;
}

async function parseTextFile(path: string, format: DocumentFormat): Promise<void> {
  const text = decodeText(await readFile(path), format);
  let title: string | undefined;
  let body = text;
  if (format === 'HTML') ({ text: body, title } = htmlToText(text));
  else if (format === 'MARKDOWN') title = markdownTitle(text);
  await send({ type: 'meta', pages: 1, ...(title ? { title } : {}) });
  await sendPage(1, body.trim() ? body.replace(/^\n+|\s+$/g, '') : '', false);
}

// ---------------------------------------------------------------------------------------------
// PDF

/**
 * Runs OCR jobs `concurrency` at a time. `drain` resolves when all are done, or rejects with the
 * first error (a job's own failures are outcomes, not errors: an error here ends the parse).
 */
function ocrQueue(concurrency: number) {
  const waiting: (() => Promise<void>)[] = [];
  let active = 0;
  let failure: { error: unknown } | undefined;
  let idle: (() => void) | undefined;
  const next = () => {
    while (active < concurrency && waiting.length && !failure) {
      const job = waiting.shift()!;
      active++;
      job()
        .catch((error: unknown) => {
          failure ??= { error };
        })
        .finally(() => {
          active--;
          next();
        });
    }
    if (idle && (failure || (active === 0 && waiting.length === 0))) idle();
  };
  return {
    add(job: () => Promise<void>) {
      waiting.push(job);
      next();
    },
    drain(): Promise<void> {
      return new Promise<void>((resolve) => {
        idle = resolve;
        next();
      }).then(() => {
        if (failure) throw failure.error;
      });
    },
  };
}

async function parsePdf(path: string, ocr: OcrChildOptions | undefined): Promise<void> {
  const pdfjs = await import('pdfjs-dist/legacy/build/pdf.mjs');
  // Hand pdfjs its worker code directly: it then runs "the worker" on this thread, no worker file is looked up.
  const workerModule: string = 'pdfjs-dist/legacy/build/pdf.worker.mjs';
  (globalThis as { pdfjsWorker?: unknown }).pdfjsWorker ??= await import(workerModule);
  const assets = (dir: string) => fileURLToPath(new URL(`${dir}/`, import.meta.resolve('pdfjs-dist/package.json')));
  const data = new Uint8Array(await readFile(path));
  const doc = await pdfjs.getDocument({
    data,
    isEvalSupported: false, // no code generated from the file's fonts
    useSystemFonts: false,
    disableFontFace: true,
    useWasm: false, // image decoders: not needed for text
    isOffscreenCanvasSupported: false,
    isImageDecoderSupported: false,
    enableXfa: false,
    stopAtErrors: false, // recover what can be recovered; a page that still fails fails the file
    verbosity: pdfjs.VerbosityLevel.ERRORS,
    // Read from the package on disk (pdfjs reads these with fs in Node). Only some fonts and CJK encodings need them.
    cMapUrl: assets('cmaps'),
    cMapPacked: true,
    standardFontDataUrl: assets('standard_fonts'),
  }).promise;
  let title: string | undefined;
  try {
    const { info } = await doc.getMetadata();
    title = cleanTitle((info as { Title?: unknown } | undefined)?.Title);
  } catch {
    // broken metadata is no reason to refuse the text
  }
  await send({ type: 'meta', pages: doc.numPages, ...(title ? { title } : {}) });
  const queue = ocr && ocrQueue(Math.max(1, ocr.concurrency));
  for (let n = 1; n <= doc.numPages; n++) {
    const page = await doc.getPage(n);
    const content = await page.getTextContent();
    const items: PdfTextItem[] = content.items.filter((item) => 'str' in item);
    const { text, unreadable } = pdfPageText(items);
    const [x0 = 0, y0 = 0, x1 = 0, y1 = 0] = page.view;
    page.cleanup();
    if (queue && !text.trim()) {
      // No text layer, or one that does not decode to words: read the page's image instead.
      const [width, height] = [Math.abs(x1 - x0), Math.abs(y1 - y0)];
      queue.add(async () => {
        await send({ type: 'ocr', page: n });
        const result = await ocrPdfPage(path, n, width, height, ocr);
        const { text: ocrText, ...outcome } = result;
        await sendPage(n, ocrText, unreadable, outcome);
      });
    } else await sendPage(n, text, unreadable);
  }
  // The text layer is read: pdfjs's memory can go while the pages' images are read.
  await doc.destroy();
  await queue?.drain();
}

// ---------------------------------------------------------------------------------------------

function toMessage(err: unknown, format: DocumentFormat): Extract<ChildMessage, { type: 'error' }> {
  const detail = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  if (err instanceof IngestError) {
    const cause = err.cause instanceof Error ? `${err.cause.name}: ${err.cause.message}` : undefined;
    return { type: 'error', code: err.code, message: err.message, ...(cause ? { detail: cause } : {}) };
  }
  const name = err instanceof Error ? err.name : '';
  if (name === 'PasswordException') return { type: 'error', code: 'ENCRYPTED_PDF', message: MESSAGES.encrypted, detail };
  if (/allocation failed|out of memory|invalid (typed )?array length/i.test(detail)) {
    return { type: 'error', code: 'TOO_LARGE', message: MESSAGES.memory, detail };
  }
  const message = format === 'PDF' ? MESSAGES.malformedPdf : MESSAGES.malformedFile;
  return { type: 'error', code: 'MALFORMED_FILE', message, detail };
}

async function main(): Promise<void> {
  const [path, format, max, ocrJson] = process.argv.slice(2);
  if (!path || !(DOCUMENT_FORMATS as readonly string[]).includes(format ?? '')) {
    process.stderr.write('usage: parse-child.ts <file> <PDF|MARKDOWN|TEXT|HTML> [maxChars] [ocr options as JSON]\n');
    process.exit(2);
  }
  if (max) maxChars = charBudget = Number(max);
  const ocr = ocrJson ? (JSON.parse(ocrJson) as OcrChildOptions) : undefined;
  const fmt = format as DocumentFormat;
  // OCR programs still running go with this process, however it ends (parse.ts also kills the process group).
  process.on('exit', killOcrPrograms);
  // The parent went away (killed, crashed): nobody is waiting for the text, nor will remove the scratch directory.
  process.on('disconnect', () => {
    killOcrPrograms();
    if (ocr) rmSync(ocr.workDir, { recursive: true, force: true });
    process.exit(0);
  });
  const fail = (err: unknown) => {
    void send(toMessage(err, fmt)).finally(() => process.exit(0));
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  if (import.meta.url.endsWith('.ts')) register(`data:text/javascript,${encodeURIComponent(PDFJS_PASSTHROUGH_HOOKS)}`);
  await send({ type: 'ready' });
  try {
    if (fmt === 'PDF') await parsePdf(path, ocr);
    else await parseTextFile(path, fmt);
    await send({ type: 'done', maxRssKb: process.resourceUsage().maxRSS });
  } catch (err) {
    await send(toMessage(err, fmt));
  }
  process.exit(0);
}

// Imported for its types or helpers (parse.ts, tests) it must not start parsing.
if (process.argv[1] && pathToFileURL(resolve(process.argv[1])).href === import.meta.url) await main();
