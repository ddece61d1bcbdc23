import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Expiring links to a document's original file (`Document.fileUrl`). The rag subgraph signs
 * them for members; the router checks them at `GET /files/...` and, behind nginx, answers with
 * `X-Accel-Redirect` so that nginx serves the bytes (ranges included) from the blob directory.
 * Holding the link is the credential, as with any pre-signed URL: it works in an `<a href>` or a
 * PDF viewer without a token, until it expires.
 *
 *   /files/<documentId>/<file name>?k=<blob key>&f=<format>&e=<expiry, unix s>&s=<signature>
 *
 * The signature is HMAC-SHA256 over the document id, the blob key, the format and the expiry
 * (`FILE_URL_SECRET`, shared by the rag subgraph and the router). The file name is only there
 * so that browsers show and save a sensible name; it is not trusted.
 */
export const FILES_PATH = '/files';

export const FILE_FORMATS = ['PDF', 'MARKDOWN', 'TEXT', 'HTML'] as const;
export type FileFormat = (typeof FILE_FORMATS)[number];

/** What is served for each format. HTML is served as text: an uploaded page must never run on our origin. */
export const FILE_CONTENT_TYPES: Record<FileFormat, string> = {
  PDF: 'application/pdf',
  MARKDOWN: 'text/markdown; charset=utf-8',
  TEXT: 'text/plain; charset=utf-8',
  HTML: 'text/plain; charset=utf-8',
};

const EXTENSIONS: Record<FileFormat, string> = { PDF: 'pdf', MARKDOWN: 'md', TEXT: 'txt', HTML: 'html' };

export interface FileLinkTarget {
  documentId: string;
  blobKey: string;
  format: FileFormat;
  filename?: string | null;
}

export interface FileLinkParams {
  documentId: string;
  blobKey: string;
  format: string;
  expires: string;
  signature: string;
}

export type FileLinkCheck =
  | { ok: true; blobKey: string; format: FileFormat; expiresAt: number }
  | { ok: false; reason: 'invalid_signature' | 'expired' | 'malformed' };

/** Smallest secret accepted: 32 characters. */
export const MIN_SECRET_LENGTH = 32;

function signature(secret: string, documentId: string, blobKey: string, format: string, expires: string): Buffer {
  return createHmac('sha256', secret).update(`v1\n${documentId}\n${blobKey}\n${format}\n${expires}`).digest();
}

/** A name for the link's last segment: the upload's name, or "document.<ext>"; only safe characters. */
export function linkFilename(target: Pick<FileLinkTarget, 'filename' | 'format'>): string {
  const ext = EXTENSIONS[target.format];
  const base = (target.filename ?? '')
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .slice(0, 100);
  if (!base) return `document.${ext}`;
  return base.toLowerCase().endsWith(`.${ext}`) ? base : `${base}.${ext}`;
}

/**
 * The link's path and query (relative to the public origin), valid until `expiresAtS`
 * (unix seconds). `baseUrl`, when given, is prefixed (e.g. https://teacher.example.edu).
 */
export function signFileLink(secret: string, target: FileLinkTarget, expiresAtS: number, baseUrl = ''): string {
  const expires = String(Math.floor(expiresAtS));
  const sig = signature(secret, target.documentId, target.blobKey, target.format, expires).toString('base64url');
  const query = new URLSearchParams({ k: target.blobKey, f: target.format, e: expires, s: sig });
  const path = `${FILES_PATH}/${encodeURIComponent(target.documentId)}/${encodeURIComponent(linkFilename(target))}`;
  return `${baseUrl.replace(/\/+$/, '')}${path}?${query.toString()}`;
}

/** Checks a link's parameters: a valid signature first, then the expiry (`nowS`, unix seconds). */
export function verifyFileLink(secret: string, params: FileLinkParams, nowS = Date.now() / 1000): FileLinkCheck {
  const { documentId, blobKey, format, expires } = params;
  if (!documentId || !blobKey || !/^\d{1,12}$/.test(expires) || !(FILE_FORMATS as readonly string[]).includes(format)) {
    return { ok: false, reason: 'malformed' };
  }
  const given = Buffer.from(params.signature ?? '', 'base64url');
  const expected = signature(secret, documentId, blobKey, format, expires);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'invalid_signature' };
  const expiresAt = Number(expires);
  if (expiresAt <= nowS) return { ok: false, reason: 'expired' };
  return { ok: true, blobKey, format: format as FileFormat, expiresAt };
}
