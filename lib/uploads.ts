import { isUtf8 } from 'node:buffer';
import type { Redis } from 'ioredis';
import { z } from 'zod';

/**
 * Files sent to the router's POST /uploads, waiting to be ingested. The router
 * writes the metadata; the rag subgraph consumes it in ingestDocument. The
 * bytes themselves are in the blob store under `blobKey`.
 */
export const UploadFormats = ['PDF', 'MARKDOWN', 'TEXT', 'HTML'] as const;
export type UploadFormat = (typeof UploadFormats)[number];

export const DEFAULT_UPLOAD_TTL_S = 24 * 60 * 60;
export const MAX_FILENAME_LENGTH = 200;

export const UploadMetaSchema = z.object({
  id: z.uuid(),
  ownerId: z.string().min(1).max(128),
  blobKey: z.string().min(1).max(512),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  mime: z.string().min(1).max(100),
  detectedFormat: z.enum(UploadFormats),
  filename: z.string().max(MAX_FILENAME_LENGTH),
  createdAt: z.iso.datetime(),
});
export type UploadMeta = z.infer<typeof UploadMetaSchema>;

const redisKey = (id: string) => `upload:${id}`;
const isUploadId = (id: string) => z.uuid().safeParse(id).success;

/** Stores the metadata for `ttlS` seconds. Throws if it is invalid or the id is already taken. */
export async function saveUpload(redis: Redis, meta: UploadMeta, ttlS = DEFAULT_UPLOAD_TTL_S): Promise<void> {
  const valid = UploadMetaSchema.parse(meta);
  if (!Number.isInteger(ttlS) || ttlS <= 0) throw new Error(`upload TTL must be a positive number of seconds, got ${ttlS}`);
  const reply = await redis.set(redisKey(valid.id), JSON.stringify(valid), 'EX', ttlS, 'NX');
  if (reply !== 'OK') throw new Error(`upload ${valid.id} already exists`);
}

/** The upload's metadata, or null if there is none (never uploaded, expired or consumed). */
export async function getUpload(redis: Redis, id: string): Promise<UploadMeta | null> {
  if (!isUploadId(id)) return null;
  const raw = await redis.get(redisKey(id));
  return raw === null ? null : parseMeta(raw);
}

/**
 * Reads and deletes the metadata in one step if `ownerId` uploaded it, so an
 * upload feeds at most one ingestion. Null if it is absent, expired, already
 * consumed, or someone else's (which is left untouched).
 */
const CONSUME = `
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local ok, meta = pcall(cjson.decode, raw)
if not ok or type(meta) ~= 'table' or meta.ownerId ~= ARGV[1] then return false end
redis.call('DEL', KEYS[1])
return raw`;

export async function consumeUpload(redis: Redis, id: string, ownerId: string): Promise<UploadMeta | null> {
  if (!isUploadId(id)) return null;
  const raw = (await redis.eval(CONSUME, 1, redisKey(id), ownerId)) as string | null;
  return raw === null ? null : parseMeta(raw);
}

function parseMeta(raw: string): UploadMeta {
  // Only this module writes these keys: anything invalid is a bug, not an expected case.
  return UploadMetaSchema.parse(JSON.parse(raw));
}

// ---------------------------------------------------------------------------
// The daily upload quota

/**
 * How many bytes a user sent in the current UTC day (files to POST /uploads, texts pasted into
 * ingestDocument), counted in Redis by the router and the rag subgraph alike, against a limit.
 */
export interface DailyUploadUsage {
  usedBytes: number;
  limitBytes: number;
  /** The next UTC midnight, when the count starts again. */
  resetsAt: Date;
  /** Seconds until then (at least 1). */
  retryAfter: number;
}

export type DailyReservation = { ok: true; granted: number; day: string } | { ok: false; usage: DailyUploadUsage };

export interface DailyUploadQuota {
  /** False when there is no limit (0): nothing is counted then. */
  readonly enabled: boolean;
  usage(userId: string, now?: Date): Promise<DailyUploadUsage>;
  /**
   * Counts `need` bytes (and up to `want`, when there is room, to reserve ahead) against the
   * user's day, atomically; refused, with nothing counted, if `need` does not fit.
   */
  reserve(userId: string, need: number, want?: number, now?: Date): Promise<DailyReservation>;
  /** Gives back bytes counted on `day` (a refused or failed upload, a reservation not used). */
  release(userId: string, bytes: number, day: string): Promise<void>;
}

const quotaDay = (now: Date) => now.toISOString().slice(0, 10);
const quotaKey = (userId: string, day: string) => `quota:upload-bytes:${day}:${userId}`;
const QUOTA_KEY_TTL_S = 2 * 24 * 3600;

const RESERVE = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local need = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
if used + need > limit then return {0, used} end
local grant = math.min(want, limit - used)
used = redis.call('INCRBY', KEYS[1], grant)
redis.call('EXPIRE', KEYS[1], ARGV[4])
return {grant, used}`;

const RELEASE = `
local left = redis.call('DECRBY', KEYS[1], ARGV[1])
if left <= 0 then redis.call('DEL', KEYS[1]) end
return left`;

function usageOf(usedBytes: number, limitBytes: number, now: Date): DailyUploadUsage {
  const resetsAt = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
  return { usedBytes, limitBytes, resetsAt, retryAfter: Math.max(1, Math.ceil((resetsAt.getTime() - now.getTime()) / 1000)) };
}

/** The per-user daily quota of uploaded bytes (`limitBytes` 0: no limit). */
export function createDailyUploadQuota(redis: Redis, limitBytes: number): DailyUploadQuota {
  const enabled = limitBytes > 0;
  return {
    enabled,
    async usage(userId, now = new Date()) {
      const used = enabled ? Number((await redis.get(quotaKey(userId, quotaDay(now)))) ?? 0) : 0;
      return usageOf(used, limitBytes, now);
    },
    async reserve(userId, need, want = need, now = new Date()) {
      const day = quotaDay(now);
      if (!enabled) return { ok: true, granted: Math.max(need, want), day };
      const [granted, used] = (await redis.eval(
        RESERVE,
        1,
        quotaKey(userId, day),
        need,
        Math.max(need, want),
        limitBytes,
        QUOTA_KEY_TTL_S,
      )) as [number, number];
      if (granted === 0 && need > 0) return { ok: false, usage: usageOf(used, limitBytes, now) };
      return { ok: true, granted, day };
    },
    async release(userId, bytes, day) {
      if (!enabled || bytes <= 0) return;
      await redis.eval(RELEASE, 1, quotaKey(userId, day), bytes);
    },
  };
}

/** 1.5 GiB, 20 MiB, 512 bytes: sizes as people read them. */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${Number(value.toFixed(1))} ${units[unit]}`;
}

/** What a refusal for the daily quota says, and the extensions it carries (RATE_LIMITED). */
export function dailyQuotaRefusal(usage: DailyUploadUsage, requestedBytes?: number) {
  return {
    message:
      `Daily upload limit reached: ${formatBytes(usage.usedBytes)} of ${formatBytes(usage.limitBytes)} used today` +
      `${requestedBytes === undefined ? '' : `, ${formatBytes(requestedBytes)} more asked`}; ` +
      `the count starts again at ${usage.resetsAt.toISOString()} (in ${usage.retryAfter} s)`,
    extensions: {
      retryAfter: usage.retryAfter,
      resetsAt: usage.resetsAt.toISOString(),
      limitBytes: usage.limitBytes,
      usedBytes: usage.usedBytes,
      ...(requestedBytes === undefined ? {} : { requestedBytes }),
    },
  };
}

// ---------------------------------------------------------------------------
// Format detection, from the content only

export type DetectedFormat = { format: UploadFormat; mime: string } | { unsupported: string };

export const MIME_TYPES: Record<UploadFormat, string> = {
  PDF: 'application/pdf',
  MARKDOWN: 'text/markdown',
  TEXT: 'text/plain',
  HTML: 'text/html',
};

/** How many leading bytes `detectFormat` wants (it looks at no more than this). */
export const SNIFF_BYTES = 8192;

const detected = (format: UploadFormat): DetectedFormat => ({ format, mime: MIME_TYPES[format] });

interface Signature {
  offset?: number;
  bytes: number[];
  name: string;
}

/** Binary signatures: bytes (numbers, or strings read as Latin-1) at an offset, and what to call such a file. */
const MAGIC: Signature[] = (
  [
    { bytes: ['\x89PNG\r\n\x1a\n'], name: 'a PNG image' },
    { bytes: [0xff, 0xd8, 0xff], name: 'a JPEG image' },
    { bytes: ['GIF87a'], name: 'a GIF image' },
    { bytes: ['GIF89a'], name: 'a GIF image' },
    { bytes: ['II*', 0], name: 'a TIFF image' },
    { bytes: ['MM', 0, '*'], name: 'a TIFF image' },
    { bytes: [0, 0, 1, 0], name: 'an icon (.ico)' },
    { offset: 8, bytes: ['WEBP'], name: 'a WebP image' },
    { offset: 8, bytes: ['WAVE'], name: 'an audio file (WAV)' },
    { offset: 8, bytes: ['AVI '], name: 'a video (AVI)' },
    { offset: 4, bytes: ['ftypheic'], name: 'a HEIC image' },
    { offset: 4, bytes: ['ftyp'], name: 'a video or audio file (MP4)' },
    { bytes: ['ID3'], name: 'an audio file (MP3)' },
    { bytes: [0xff, 0xfb], name: 'an audio file (MP3)' },
    { bytes: ['OggS'], name: 'an audio or video file (Ogg)' },
    { bytes: ['fLaC'], name: 'an audio file (FLAC)' },
    { bytes: [0x1a, 0x45, 0xdf, 0xa3], name: 'a video (WebM or Matroska)' },
    { bytes: ['PK', 3, 4], name: 'a ZIP archive (for example a .docx)' },
    { bytes: ['PK', 5, 6], name: 'a ZIP archive' },
    { bytes: ['PK', 7, 8], name: 'a ZIP archive' },
    { bytes: [0x1f, 0x8b], name: 'a gzip archive' },
    { bytes: ['BZh'], name: 'a bzip2 archive' },
    { bytes: [0xfd, '7zXZ', 0], name: 'an xz archive' },
    { bytes: [0x28, 0xb5, 0x2f, 0xfd], name: 'a zstd archive' },
    { bytes: ['7z', 0xbc, 0xaf, 0x27, 0x1c], name: 'a 7-Zip archive' },
    { bytes: ['Rar!', 0x1a, 0x07], name: 'a RAR archive' },
    { offset: 257, bytes: ['ustar'], name: 'a tar archive' },
    { bytes: [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1], name: 'an old Microsoft Office file (.doc, .xls or .ppt)' },
    { bytes: ['{\\rtf'], name: 'an RTF document' },
    { bytes: ['%!PS'], name: 'a PostScript file' },
    { bytes: ['AT&TFORM'], name: 'a DjVu document' },
    { bytes: ['SQLite format 3', 0], name: 'an SQLite database' },
    { bytes: [0x7f, 'ELF'], name: 'a program (ELF executable)' },
    { bytes: ['MZ'], name: 'a Windows program' },
    { bytes: [0xfe, 0xed, 0xfa, 0xce], name: 'a program (Mach-O executable)' },
    { bytes: [0xfe, 0xed, 0xfa, 0xcf], name: 'a program (Mach-O executable)' },
    { bytes: [0xce, 0xfa, 0xed, 0xfe], name: 'a program (Mach-O executable)' },
    { bytes: [0xcf, 0xfa, 0xed, 0xfe], name: 'a program (Mach-O executable)' },
    { bytes: [0xca, 0xfe, 0xba, 0xbe], name: 'a compiled program (Java class or Mach-O)' },
    { bytes: [0, 'asm'], name: 'a WebAssembly module' },
    { bytes: ['wOFF'], name: 'a font' },
    { bytes: ['wOF2'], name: 'a font' },
    { bytes: [0xef, 0xbb, 0xbf, '{\\rtf'], name: 'an RTF document' },
    { bytes: [0xff, 0xfe, 0, 0], name: 'a UTF-32 text file' },
    { bytes: [0, 0, 0xfe, 0xff], name: 'a UTF-32 text file' },
    { bytes: [0xff, 0xfe], name: 'a UTF-16 text file' },
    { bytes: [0xfe, 0xff], name: 'a UTF-16 text file' },
  ] as { offset?: number; bytes: (number | string)[]; name: string }[]
).map((m) => ({ ...m, bytes: m.bytes.flatMap((b) => (typeof b === 'number' ? [b] : [...Buffer.from(b, 'latin1')])) }));

/** Signatures of two bytes or so also start ordinary text ("MZ...", "BZh..."): trust them only for binary-looking content. */
const WEAK_MAGIC = new Set(['a Windows program', 'an audio file (MP3)', 'a bzip2 archive']);

/** ZIP-based formats, recognised by the names of their first entries. */
const ZIP_KINDS: [RegExp, string][] = [
  [/word\//, 'a Word document (.docx)'],
  [/xl\//, 'an Excel workbook (.xlsx)'],
  [/ppt\//, 'a PowerPoint presentation (.pptx)'],
  [/application\/epub\+zip/, 'an e-book (.epub)'],
  [/application\/vnd\.oasis\.opendocument/, 'an OpenDocument file (.odt, .ods or .odp)'],
];

const UTF8_BOM = [0xef, 0xbb, 0xbf];
const PDF_MAGIC = Buffer.from('%PDF-');
const PDF_HEADER_WINDOW = 1024;

/**
 * What a file is, judged from its first bytes (up to SNIFF_BYTES; fewer if the
 * file is shorter), never from its name: a PDF, HTML, Markdown or plain text,
 * or something unsupported named for people ("a PNG image"). The filename's
 * extension only breaks a tie between MARKDOWN and TEXT.
 *
 * Text must be UTF-8 (a BOM is allowed) without NUL bytes; `firstBytes` may end
 * in the middle of a character.
 */
export function detectFormat(firstBytes: Buffer, filename?: string): DetectedFormat {
  const head = firstBytes.subarray(0, SNIFF_BYTES);
  if (head.length === 0) return { unsupported: 'an empty file' };
  if (isPdf(head)) return detected('PDF');

  const magic = MAGIC.find((m) => startsWithAt(head, m.bytes, m.offset ?? 0));
  const textual = looksLikeText(head);
  if (magic && (!WEAK_MAGIC.has(magic.name) || !textual)) {
    return { unsupported: magic.name.startsWith('a ZIP archive') ? zipKind(head) : magic.name };
  }
  if (!textual) return { unsupported: 'a binary file' };

  const text = stripBom(head).toString('utf8');
  const markup = markupKind(text);
  if (markup) return markup;
  return detected(isMarkdown(text, filename) ? 'MARKDOWN' : 'TEXT');
}

/** `%PDF-` at the start, after at most a BOM and whitespace within the first KB (readers such as pdf.js accept that much). */
function isPdf(head: Buffer): boolean {
  let i = startsWithAt(head, UTF8_BOM, 0) ? UTF8_BOM.length : 0;
  while (i < head.length && i < PDF_HEADER_WINDOW && isAsciiSpace(head[i]!)) i++;
  return i < PDF_HEADER_WINDOW && startsWithAt(head, [...PDF_MAGIC], i);
}

function isAsciiSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d || byte === 0x0c;
}

function startsWithAt(buf: Buffer, bytes: readonly number[], offset: number): boolean {
  if (buf.length < offset + bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (buf[offset + i] !== bytes[i]) return false;
  return true;
}

function stripBom(buf: Buffer): Buffer {
  return startsWithAt(buf, UTF8_BOM, 0) ? buf.subarray(UTF8_BOM.length) : buf;
}

function zipKind(head: Buffer): string {
  const names = head.toString('latin1');
  return ZIP_KINDS.find(([pattern]) => pattern.test(names))?.[1] ?? 'a ZIP archive (for example a .docx)';
}

/** Length of `buf` without an incomplete UTF-8 sequence at its end (the sniffed bytes may cut one). */
export function completeUtf8Length(buf: Uint8Array): number {
  for (let back = 1; back <= Math.min(4, buf.length); back++) {
    const byte = buf[buf.length - back]!;
    if ((byte & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead byte
    const needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return needed > back ? buf.length - back : buf.length;
  }
  return buf.length;
}

/** UTF-8 without NUL bytes and with few other control characters. */
function looksLikeText(head: Buffer): boolean {
  if (head.includes(0)) return false;
  if (!isUtf8(head.subarray(0, completeUtf8Length(head)))) return false;
  let controls = 0;
  for (const byte of head) {
    // C0 controls other than tab, newlines, form feed and escape (ANSI colours in logs), and DEL.
    if ((byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d && byte !== 0x0c && byte !== 0x1b) || byte === 0x7f) controls++;
  }
  return controls <= head.length * 0.01;
}

const HTML_TAG =
  /<\/?(?:html|head|body|div|span|p|a|br|hr|h[1-6]|ul|ol|li|dl|dt|dd|table|thead|tbody|tr|td|th|img|meta|link|script|style|title|section|article|nav|header|footer|main|aside|strong|em|b|i|u|pre|code|blockquote|form|input|button|label|figure|figcaption|iframe)\b[^<>]{0,500}>/gi;
const FENCED_CODE = /^ {0,3}(```|~~~)[^\n]*\n[\s\S]*?(?:^ {0,3}\1[^\n]*$|(?![\s\S]))/gm;
const INLINE_CODE = /`[^`\n]+`/g;

/** HTML (a document or a fragment made mostly of tags), or XML and SVG, which are not supported. */
function markupKind(text: string): DetectedFormat | undefined {
  const xmlDeclaration = /^\s*<\?xml\b/i.test(text);
  // Skip leading whitespace, comments and an XML declaration.
  const start = text.replace(/^(?:\s|<!--[\s\S]*?-->|<\?xml[^>]*\?>)*/i, '').slice(0, 2000);
  if (/^<!doctype\s+html\b/i.test(start) || /^<(?:html|head|body)\b/i.test(start)) return detected('HTML');
  if (/^<svg\b/i.test(start)) return { unsupported: 'an SVG image' };
  if (xmlDeclaration || /^<!doctype\s/i.test(start)) {
    if (/<html\b/i.test(text)) return detected('HTML'); // XHTML
    if (/<svg\b/i.test(text)) return { unsupported: 'an SVG image' };
    return { unsupported: 'an XML document' };
  }
  // A fragment: tags make up a good part of it once code samples (say, HTML examples in Markdown) are set aside.
  const prose = text.replace(FENCED_CODE, '').replace(INLINE_CODE, '');
  const tags = prose.match(HTML_TAG) ?? [];
  const tagChars = tags.reduce((n, t) => n + t.length, 0);
  const visible = prose.replace(/\s+/g, '').length;
  if (tags.length >= 5 && visible > 0 && tagChars / visible >= 0.15) return detected('HTML');
  return undefined;
}

/** Markdown constructs, each weighed once however often it appears. */
const MARKDOWN_SIGNS: { pattern: RegExp; weight: number }[] = [
  { pattern: /^ {0,3}#{1,6}[ \t]+\S/m, weight: 2 }, // ATX heading
  { pattern: /^(?=[^\n]*\S)[^\n]+\n {0,3}(?:=+|-{2,})[ \t]*$/m, weight: 1 }, // setext heading
  { pattern: /\[[^\]\n]{1,300}\]\((?:[^()\s]{1,2000}|<[^>\n]{1,2000}>)(?:[ \t]+"[^"\n]{0,300}")?\)/, weight: 2 }, // inline link or image
  { pattern: /^ {0,3}\[[^\]\n]+\]:[ \t]*\S+/m, weight: 2 }, // reference definition
  { pattern: /^ {0,3}\|?[ \t]*:?-{3,}:?[ \t]*\|[ \t]*:?-{3,}/m, weight: 2 }, // table delimiter row
  { pattern: /^ {0,3}(?:[-*+]|\d{1,9}[.)])[ \t]+\S/m, weight: 1 }, // list item
  { pattern: /\*\*(?=\S)[^*\n]{1,300}?(?<=\S)\*\*|__(?=\S)[^_\n]{1,300}?(?<=\S)__/, weight: 1 }, // strong emphasis
  { pattern: /(?:^|[\s(])([*_])(?=[^\s*_])[^*_\n]+?(?<=[^\s*_])\1(?=[\s).,;:!?]|$)/m, weight: 1 }, // emphasis
  { pattern: /^ {0,3}>[ \t]?\S/m, weight: 1 }, // block quote
  { pattern: /`[^`\n]+`/, weight: 1 }, // inline code
];

const MARKDOWN_EXTENSIONS = /\.(?:md|markdown|mdown|mkdn|mkd|mdx)$/i;
const TEXT_EXTENSIONS = /\.(?:txt|text)$/i;

/**
 * Markdown if its structure says so. A score of 3 or more is Markdown whatever the
 * name; 0 is text whatever the name; in between the extension decides, and without
 * a telling extension a score of 2 (say, a single heading) counts as Markdown.
 */
function isMarkdown(text: string, filename: string | undefined): boolean {
  const fenced = text.match(FENCED_CODE);
  const rest = text.replace(FENCED_CODE, '');
  const score = (fenced ? 2 : 0) + MARKDOWN_SIGNS.reduce((sum, { pattern, weight }) => sum + (pattern.test(rest) ? weight : 0), 0);
  if (score >= 3) return true;
  if (score === 0) return false;
  if (filename && MARKDOWN_EXTENSIONS.test(filename)) return true;
  if (filename && TEXT_EXTENSIONS.test(filename)) return false;
  return score >= 2;
}
