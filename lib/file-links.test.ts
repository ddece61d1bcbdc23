import { describe, expect, it } from '@jest/globals';
import { linkFilename, signFileLink, verifyFileLink } from './file-links.js';

const SECRET = 'a-secret-of-at-least-thirty-two-characters!';
const target = {
  documentId: '6f1c2d3e-0000-4000-8000-000000000001',
  blobKey: 'uploads/2026/12/abc',
  format: 'PDF' as const,
  filename: 'Week 1: notes.pdf',
};

/** The parameters of a signed link, as the router reads them. */
function paramsOf(link: string) {
  const url = new URL(link, 'https://example.test');
  const q = url.searchParams;
  return {
    documentId: decodeURIComponent(url.pathname.split('/')[2]!),
    blobKey: q.get('k')!,
    format: q.get('f')!,
    expires: q.get('e')!,
    signature: q.get('s')!,
  };
}

describe('file links', () => {
  it('signs a path with the document, a readable file name and the expiry, and verifies it until then', () => {
    const link = signFileLink(SECRET, target, 2_000_000_000);
    expect(link).toMatch(
      /^\/files\/6f1c2d3e-0000-4000-8000-000000000001\/Week-1-notes\.pdf\?k=uploads%2F2026%2F12%2Fabc&f=PDF&e=2000000000&s=[\w-]{43}$/,
    );
    expect(verifyFileLink(SECRET, paramsOf(link), 1_999_999_999)).toEqual({
      ok: true,
      blobKey: target.blobKey,
      format: 'PDF',
      expiresAt: 2_000_000_000,
    });
    expect(signFileLink(SECRET, target, 2_000_000_000, 'https://teacher.example.edu/')).toBe(`https://teacher.example.edu${link}`);
  });

  it('refuses it once expired, and whenever a signed part or the secret differs', () => {
    const params = paramsOf(signFileLink(SECRET, target, 2_000_000_000));
    expect(verifyFileLink(SECRET, params, 2_000_000_000)).toEqual({ ok: false, reason: 'expired' });
    for (const changed of [
      { expires: '2000000001' },
      { blobKey: 'uploads/2026/12/other' },
      { documentId: '6f1c2d3e-0000-4000-8000-000000000002' },
      { format: 'TEXT' },
      { signature: params.signature.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) },
    ]) {
      expect(verifyFileLink(SECRET, { ...params, ...changed }, 0)).toEqual({ ok: false, reason: 'invalid_signature' });
    }
    expect(verifyFileLink(`${SECRET}x`, params, 0)).toEqual({ ok: false, reason: 'invalid_signature' });
    expect(verifyFileLink(SECRET, { ...params, format: 'EXE' }, 0)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyFileLink(SECRET, { ...params, expires: 'soon' }, 0)).toEqual({ ok: false, reason: 'malformed' });
    expect(verifyFileLink(SECRET, { ...params, signature: '' }, 0)).toEqual({ ok: false, reason: 'invalid_signature' });
  });

  it('names the file safely, with the extension of its format', () => {
    expect(linkFilename({ filename: '../../etc/passwd', format: 'TEXT' })).toBe('etc-passwd.txt');
    expect(linkFilename({ filename: 'Résumé final.PDF', format: 'PDF' })).toBe('Resume-final.PDF');
    expect(linkFilename({ filename: null, format: 'MARKDOWN' })).toBe('document.md');
    expect(linkFilename({ filename: '日本語', format: 'HTML' })).toBe('document.html');
  });
});
