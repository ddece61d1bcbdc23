/**
 * PDFs generated at test time with pdfkit (built-in Helvetica: no font files needed).
 * Every function resolves to the file's bytes; `writeFixture` puts them on disk.
 * Dates and text are fixed, so the same call gives the same document.
 */
import { execFile } from 'node:child_process';
import { mulberry32 } from '../../lib/exam/random.js';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { createDeflate } from 'node:zlib';
import PDFDocument from 'pdfkit';

const FIXED_DATE = new Date('2024-01-01T00:00:00Z');
const MARGIN = 72;

function newDoc(options: PDFKit.PDFDocumentOptions = {}): PDFKit.PDFDocument {
  return new PDFDocument({ size: 'A4', margin: MARGIN, ...options, info: { CreationDate: FIXED_DATE, ...options.info } });
}

/** Ends the document and collects its bytes. */
function finish(doc: PDFKit.PDFDocument): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    doc.on('data', (part: Buffer) => parts.push(part));
    doc.on('end', () => resolve(Buffer.concat(parts)));
    doc.on('error', reject);
    doc.end();
  });
}

/** Counts the pages pdfkit has, so that a fixture whose text overflows a page fails loudly instead of shifting page numbers. */
function pageCounter(doc: PDFKit.PDFDocument): () => number {
  let pages = 1;
  doc.on('pageAdded', () => pages++);
  return () => pages;
}

export async function writeFixture(path: string, bytes: Buffer | Promise<Buffer>): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, await bytes);
  return path;
}

/**
 * One PDF page per entry of `pages`, each holding its paragraphs (11 pt Helvetica), optionally
 * under a heading in 18 pt Helvetica-Bold. Throws when a page's text does not fit on one page.
 */
export async function makeTextPdf(pages: string[][], opts: { title?: string; headings?: (string | null)[] } = {}): Promise<Buffer> {
  const doc = newDoc(opts.title ? { info: { Title: opts.title } } : {});
  const count = pageCounter(doc);
  pages.forEach((paragraphs, i) => {
    if (i > 0) doc.addPage();
    const heading = opts.headings?.[i];
    if (heading) doc.font('Helvetica-Bold').fontSize(18).text(heading).moveDown(0.6);
    for (const paragraph of paragraphs) doc.font('Helvetica').fontSize(11).text(paragraph).moveDown(0.8);
    if (count() !== i + 1) throw new Error(`makeTextPdf: the text of page ${i + 1} does not fit on one page`);
  });
  return finish(doc);
}

/**
 * Each page of `source` as a grayscale JPEG of `dpi` (poppler's pdftoppm, which must be
 * installed), in page order. JPEG, as scanners make: pdfkit embeds it as it is, where a PNG
 * would be decoded and compressed again (ten times slower for a page of text).
 */
async function renderPages(source: Buffer | Promise<Buffer>, dpi: number): Promise<Buffer[]> {
  const dir = await mkdtemp(join(tmpdir(), 'scan-fixture-'));
  try {
    await writeFile(join(dir, 'source.pdf'), await source);
    await promisify(execFile)('pdftoppm', [
      '-r',
      String(dpi),
      '-gray',
      '-jpeg',
      '-jpegopt',
      'quality=85',
      join(dir, 'source.pdf'),
      join(dir, 'page'),
    ]);
    // page-1.jpg … page-9.jpg, or page-01.jpg … when there are more pages: the number decides the order.
    const files = (await readdir(dir)).filter((f) => /^page-\d+\.jpg$/.test(f));
    files.sort((a, b) => Number(/\d+/.exec(a)![0]) - Number(/\d+/.exec(b)![0]));
    return await Promise.all(files.map((f) => readFile(join(dir, f))));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * What a scanner makes of `source`: every page an image (rendered at `dpi`, default 200) filling
 * an A4 page, and no text layer at all. Needs pdftoppm (Debian package poppler-utils).
 */
export async function scanPdf(source: Buffer | Promise<Buffer>, opts: { dpi?: number } = {}): Promise<Buffer> {
  const images = await renderPages(source, opts.dpi ?? 200);
  const doc = newDoc({ margin: 0 });
  images.forEach((image, i) => {
    if (i > 0) doc.addPage();
    doc.image(image, 0, 0, { width: doc.page.width, height: doc.page.height });
  });
  return finish(doc);
}

/**
 * The document `makeTextPdf(pages, opts)` makes, scanned: each page an image without a text
 * layer, except the pages listed in `textPages` (1-based), which keep their text as in
 * makeTextPdf. Needs pdftoppm (Debian package poppler-utils).
 */
export async function makeScannedPdf(
  pages: string[][],
  opts: { title?: string; headings?: (string | null)[]; dpi?: number; textPages?: number[] } = {},
): Promise<Buffer> {
  const images = await renderPages(makeTextPdf(pages, opts), opts.dpi ?? 200);
  const doc = newDoc(opts.title ? { info: { Title: opts.title } } : {});
  images.forEach((image, i) => {
    if (i > 0) doc.addPage();
    if (opts.textPages?.includes(i + 1)) {
      const heading = opts.headings?.[i];
      if (heading) doc.font('Helvetica-Bold').fontSize(18).text(heading).moveDown(0.6);
      for (const paragraph of pages[i]!) doc.font('Helvetica').fontSize(11).text(paragraph).moveDown(0.8);
    } else doc.image(image, 0, 0, { width: doc.page.width, height: doc.page.height });
  });
  return finish(doc);
}

/** A small deterministic PRNG (mulberry32), so that "random" text is the same on every run. */
const prng = mulberry32;

const SUBJECTS = [
  'the model',
  'this approach',
  'the observed distribution',
  'each sample',
  'the proposed estimator',
  'the control group',
  'the boundary layer',
  'a second-order correction',
  'the enzyme',
  'the reaction rate',
  'the learner',
  'the curriculum',
];
const VERBS = ['reduces', 'predicts', 'constrains', 'explains', 'approximates', 'depends on', 'increases', 'stabilises', 'reveals'];
const OBJECTS = [
  'the variance of the residuals',
  'thermal equilibrium in open systems',
  'the rate of convergence',
  'photosynthetic efficiency under low light',
  'the long-run behaviour of the series',
  'measurement error in repeated trials',
  'the activation energy',
  'retention after spaced practice',
  'the spectral gap of the operator',
  'the density of the medium',
];
const TAILS = [
  'as shown in Table 2',
  'under mild regularity conditions',
  'for sufficiently large samples',
  'in agreement with earlier work',
  'although the effect is small',
  'when the temperature is held constant',
  'at the 5% significance level',
  '',
];
const TOPICS = [
  'Kinetics',
  'Equilibrium',
  'Estimation',
  'Convergence',
  'Photosynthesis',
  'Spaced Practice',
  'Spectral Methods',
  'Boundary Layers',
];

function sentence(rand: () => number): string {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  const tail = pick(TAILS);
  const text = `${pick(SUBJECTS)} ${pick(VERBS)} ${pick(OBJECTS)}${tail ? ` ${tail}` : ''}.`;
  return text[0]!.toUpperCase() + text.slice(1);
}

/**
 * `pages` pages of deterministic academic-looking text (about 2,500 characters each, a numbered
 * section heading every third page). Lines are laid out by hand (no pdfkit line wrapping), so
 * 300 pages build in well under a second.
 */
export async function makeLargePdf(pages: number): Promise<Buffer> {
  const rand = prng(pages);
  const doc = newDoc({ info: { Title: `Synthetic textbook (${pages} pages)` } });
  const lineHeight = 14;
  const maxChars = 88;
  const bottom = doc.page.height - MARGIN;
  for (let p = 1; p <= pages; p++) {
    if (p > 1) doc.addPage();
    let y = MARGIN;
    if (p % 3 === 1) {
      const section = `${Math.ceil(p / 3)}. ${TOPICS[Math.floor(p / 3) % TOPICS.length]!} and Related Questions`;
      doc.font('Helvetica-Bold').fontSize(16).text(section, MARGIN, y, { lineBreak: false });
      y += 30;
    }
    doc.font('Helvetica').fontSize(11);
    while (y + 6 * lineHeight < bottom) {
      const words = Array.from({ length: 4 + Math.floor(rand() * 3) }, () => sentence(rand))
        .join(' ')
        .split(' ');
      let line = '';
      for (const word of words) {
        if (line && line.length + 1 + word.length > maxChars) {
          doc.text(line, MARGIN, y, { lineBreak: false });
          y += lineHeight;
          line = word;
        } else line = line ? `${line} ${word}` : word;
      }
      doc.text(line, MARGIN, y, { lineBreak: false });
      y += lineHeight * 2;
    }
    doc.fontSize(9).text(String(p), doc.page.width / 2, bottom + 20, { lineBreak: false });
  }
  return finish(doc);
}

/** Text behind a user password: opening it needs the password (pdfjs throws PasswordException). */
export async function makeEncryptedPdf(): Promise<Buffer> {
  const doc = newDoc({ userPassword: 'secret', ownerPassword: 'owner-secret', pdfVersion: '1.7' });
  doc.font('Helvetica').fontSize(11).text('This text is encrypted and needs a password to read.');
  return finish(doc);
}

/** Shapes and an image-like grid of filled squares, and no text at all: what a scanned page looks like to a text extractor. */
export async function makeNoTextPdf(): Promise<Buffer> {
  const doc = newDoc();
  doc.rect(72, 72, 450, 300).lineWidth(2).stroke('#333333');
  doc.circle(300, 520, 80).fill('#88aacc');
  for (let row = 0; row < 24; row++) {
    for (let col = 0; col < 36; col++) {
      const shade = (row * 7 + col * 13) % 200;
      doc.rect(90 + col * 12, 90 + row * 11, 12, 11).fill([shade, shade, shade]);
    }
  }
  doc.addPage();
  doc.moveTo(72, 72).lineTo(500, 700).stroke();
  return finish(doc);
}

/**
 * A compression bomb: one page whose content stream is `expandedMb` MB of spaces, deflated to
 * about 1/1000 of that. Valid PDF, no text; parsing it needs memory for the whole expanded
 * stream. Written by hand (pdfkit compresses in memory); about 0.25 s per 100 MB to build.
 */
export async function makeCompressionBombPdf(expandedMb: number): Promise<Buffer> {
  const deflate = createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  deflate.on('data', (part: Buffer) => parts.push(part));
  const ended = new Promise((resolve, reject) => deflate.on('end', resolve).on('error', reject));
  const block = Buffer.alloc(1 << 20, 0x20);
  for (let i = 0; i < expandedMb; i++) if (!deflate.write(block)) await new Promise((resolve) => deflate.once('drain', resolve));
  deflate.end();
  await ended;
  const stream = Buffer.concat(parts);

  const chunks: Buffer[] = [];
  const offsets: number[] = [];
  let length = 0;
  const add = (part: string | Buffer) => {
    const buf = typeof part === 'string' ? Buffer.from(part, 'latin1') : part;
    chunks.push(buf);
    length += buf.length;
  };
  const object = (body: string | Buffer[]) => {
    offsets.push(length);
    add(`${offsets.length} 0 obj\n`);
    for (const part of Array.isArray(body) ? body : [body]) add(part);
    add('\nendobj\n');
  };
  add('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n');
  object('<< /Type /Catalog /Pages 2 0 R >>');
  object('<< /Type /Pages /Kids [3 0 R] /Count 1 >>');
  object('<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << >> >>');
  object([
    Buffer.from(`<< /Length ${stream.length} /Filter /FlateDecode >>\nstream\n`, 'latin1'),
    stream,
    Buffer.from('\nendstream', 'latin1'),
  ]);
  const xref = length;
  add(`xref\n0 ${offsets.length + 1}\n0000000000 65535 f \n`);
  for (const offset of offsets) add(`${String(offset).padStart(10, '0')} 00000 n \n`);
  add(`trailer\n<< /Size ${offsets.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`);
  return Buffer.concat(chunks);
}

/** The first `fraction` (0..1) of the bytes, as a cut-off download would leave them. */
export function truncate(buf: Buffer, fraction: number): Buffer {
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`fraction must be within 0..1, got ${fraction}`);
  return Buffer.from(buf.subarray(0, Math.floor(buf.length * fraction)));
}
