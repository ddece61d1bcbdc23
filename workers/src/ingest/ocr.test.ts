import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable, languagePackage, resolveOcr, type OcrSettings } from './ocr.js';
import { renderDpi } from './ocr-page.js';

const SETTINGS: OcrSettings = {
  enabled: 'auto',
  tesseractBin: 'tesseract',
  pdftoppmBin: 'pdftoppm',
  languages: 'eng',
  dpi: 200,
  concurrency: 1,
  pageTimeoutMs: 60_000,
  timeoutMs: 600_000,
  minConfidence: 50,
  minChars: 20,
};

describe('resolveOcr', () => {
  let bin: string;
  beforeAll(async () => {
    // Stand-ins: a "tesseract" that knows eng, deu and osd, and a "pdftoppm" that does nothing.
    bin = await mkdtemp(join(tmpdir(), 'ocr-bin-'));
    await writeFile(
      join(bin, 'tesseract'),
      '#!/bin/sh\necho \'List of available languages in "/x/tessdata/" (3):\'\necho deu\necho eng\necho osd\n',
    );
    await writeFile(join(bin, 'pdftoppm'), '#!/bin/sh\nexit 0\n');
    await chmod(join(bin, 'tesseract'), 0o755);
    await chmod(join(bin, 'pdftoppm'), 0o755);
  });
  afterAll(() => rm(bin, { recursive: true, force: true }));

  it('turns OCR on with the programs found on PATH, as absolute paths', () => {
    const { options, problem } = resolveOcr({ ...SETTINGS, languages: 'eng+deu' }, { PATH: `/nonexistent:${bin}` });
    expect(problem).toBeUndefined();
    expect(options).toMatchObject({ tesseract: join(bin, 'tesseract'), pdftoppm: join(bin, 'pdftoppm'), languages: 'eng+deu', dpi: 200 });
  });

  it('leaves OCR off without a problem when it is off, or on auto and not installed', () => {
    expect(resolveOcr({ ...SETTINGS, enabled: false }, { PATH: bin })).toEqual({ options: null, reason: 'OCR_ENABLED is false' });
    const auto = resolveOcr(SETTINGS, { PATH: '/nonexistent' });
    expect(auto.options).toBeNull();
    expect(auto.problem).toBeUndefined();
    expect(auto.reason).toMatch(/not installed: tesseract \(Debian package tesseract-ocr\), pdftoppm \(Debian package poppler-utils\)/);
  });

  it('reports a problem when OCR is asked for but not installed, or a language is missing, naming its package', () => {
    const asked = resolveOcr({ ...SETTINGS, enabled: true }, { PATH: '/nonexistent' });
    expect(asked).toMatchObject({
      options: null,
      variable: 'OCR_ENABLED',
      problem: expect.stringMatching(/OCR_ENABLED is true but not installed/),
    });
    const language = resolveOcr({ ...SETTINGS, languages: 'eng+chi_sim' }, { PATH: bin });
    expect(language).toMatchObject({ options: null, variable: 'OCR_LANGUAGES' });
    expect(language.problem).toMatch(/no data for chi_sim \(installed: deu, eng, osd\); install tesseract-ocr-chi-sim/);
  });

  it('takes a program given by path, and refuses one that is not executable', async () => {
    expect(findExecutable(join(bin, 'tesseract'))).toBe(join(bin, 'tesseract'));
    await writeFile(join(bin, 'plain'), 'not a program');
    expect(findExecutable(join(bin, 'plain'))).toBeNull();
    expect(findExecutable('plain', bin)).toBeNull();
  });
});

describe('languagePackage', () => {
  it('names the Debian package of a tesseract language', () => {
    expect(languagePackage('eng')).toBe('tesseract-ocr-eng');
    expect(languagePackage('chi_sim')).toBe('tesseract-ocr-chi-sim');
  });
});

describe('renderDpi', () => {
  it('renders ordinary pages at the asked resolution and a poster at a lower one, keeping the image under 40 megapixels', () => {
    expect(renderDpi(595, 842, 200)).toBe(200); // A4
    const poster = renderDpi(2384, 3370, 200); // A0: 33 x 47 inches
    expect(poster).toBeLessThan(200);
    expect(((2384 / 72) * poster * (3370 / 72) * poster) / 1e6).toBeLessThanOrEqual(40);
    expect(renderDpi(1e6, 1e6, 200)).toBe(30);
    expect(renderDpi(0, 0, 200)).toBe(200);
  });
});
