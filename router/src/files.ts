import type { Request, RequestHandler, Response } from 'express';
import { assertValidKey, BlobNotFoundError, InvalidBlobKeyError, type BlobStore } from '@lib/blob/store.js';
import { ErrorCode, errorBody } from '@lib/errors.js';
import { FILE_CONTENT_TYPES, verifyFileLink } from '@lib/file-links.js';
import type { Logger } from '@lib/logger.js';

/**
 * The header nginx sets on `/files/` requests it passes here: the internal location that
 * serves the blob directory (`/.blobs/`). With it, the answer is an empty 200 with
 * `X-Accel-Redirect: <that location><blob key>` and nginx sends the bytes itself (ranges,
 * conditional requests). Without it (no nginx in front), the router sends the file.
 * nginx replaces any value a client sent.
 */
export const ACCEL_HEADER = 'x-accel-files';

export interface FileHandlerDeps {
  /** FILE_URL_SECRET; without one, every link is refused (404). */
  secret: string | undefined;
  blobStore: BlobStore;
  log: Logger;
}

function refuse(res: Response, status: number, code: ErrorCode, message: string, reason?: string) {
  res.setHeader('Cache-Control', 'no-store');
  res.status(status).json(errorBody(code, message, reason ? { reason } : {}));
}

/** GET/HEAD /files/:documentId/:name?k=&f=&e=&s= — a signed, expiring link to a document's file (lib/file-links.ts). */
export function createFileHandler(deps: FileHandlerDeps): RequestHandler {
  return async (req: Request, res: Response) => {
    const log = (res.locals['log'] as Logger | undefined) ?? deps.log;
    if (!deps.secret) return refuse(res, 404, ErrorCode.NOT_FOUND, 'File links are not enabled on this server');
    const q = req.query as Record<string, unknown>;
    const str = (v: unknown) => (typeof v === 'string' ? v : '');
    const documentId = str(req.params['documentId']);
    const check = verifyFileLink(deps.secret, {
      documentId,
      blobKey: str(q['k']),
      format: str(q['f']),
      expires: str(q['e']),
      signature: str(q['s']),
    });
    if (!check.ok) {
      log.info({ documentId, reason: check.reason }, 'file link refused');
      const message = check.reason === 'expired' ? 'This link has expired; ask for the document again' : 'This link is not valid';
      return refuse(res, 403, ErrorCode.FORBIDDEN, message, check.reason);
    }
    try {
      assertValidKey(check.blobKey);
    } catch (err) {
      if (err instanceof InvalidBlobKeyError) return refuse(res, 403, ErrorCode.FORBIDDEN, 'This link is not valid', 'malformed');
      throw err;
    }

    // The link is the credential: caches other than the user's browser must not keep it.
    const maxAge = Math.max(0, Math.floor(check.expiresAt - Date.now() / 1000));
    res.setHeader('Cache-Control', `private, max-age=${maxAge}`);
    res.setHeader('Content-Type', FILE_CONTENT_TYPES[check.format]);
    res.setHeader('Content-Disposition', 'inline');
    res.setHeader('X-Content-Type-Options', 'nosniff');

    const accel = req.header(ACCEL_HEADER);
    if (accel && /^\/[A-Za-z0-9._/-]*\/$/.test(accel)) {
      log.info({ documentId }, 'file served by the edge');
      res.setHeader('X-Accel-Redirect', `${accel}${check.blobKey}`);
      res.status(200).end();
      return;
    }
    let path: string;
    try {
      path = await deps.blobStore.localPath(check.blobKey);
    } catch (err) {
      if (err instanceof BlobNotFoundError) return refuse(res, 404, ErrorCode.NOT_FOUND, 'The file is gone (its document was deleted)');
      throw err;
    }
    // Ranges, ETag and Last-Modified as a static file server would; our Cache-Control stays.
    res.sendFile(path, { cacheControl: false, lastModified: true, etag: true, dotfiles: 'allow' }, (err) => {
      if (err && !res.headersSent) refuse(res, 500, ErrorCode.INTERNAL_SERVER_ERROR, 'Internal server error');
      else if (err && (err as NodeJS.ErrnoException).code !== 'ECONNABORTED') log.warn({ err, documentId }, 'file not sent whole');
    });
  };
}
