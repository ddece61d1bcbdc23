/**
 * OCR settings on the worker's side: which programs read scanned pages (poppler's `pdftoppm`
 * renders a page, `tesseract` reads the image), whether they are installed with the languages
 * asked for, and the options handed to the parser child (parse.ts), which runs them
 * (ocr-page.ts). Probing runs `tesseract --list-langs` once per set of settings.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';

/** What the parser needs to OCR a document's pages. */
export interface OcrOptions {
  /** Absolute paths of the programs. */
  tesseract: string;
  pdftoppm: string;
  /** Tesseract's `-l`: one or more installed languages joined by `+`, e.g. `eng+deu`. */
  languages: string;
  /** Rendering resolution; lowered for a page so large that its image would pass about 40 megapixels. */
  dpi: number;
  /** Pages of one document OCR'd at once. */
  concurrency: number;
  /** Rendering plus recognition of one page; a page over it is killed and skipped. */
  pageTimeoutMs: number;
  /** A document's OCR, all pages: added to the parser's time limit once it starts OCR. */
  timeoutMs: number;
  /** Pages read with a lower mean word confidence (0-100) are skipped. */
  minConfidence: number;
  /** Pages whose OCR text has fewer letters and digits are skipped. */
  minChars: number;
}

/** What the parser child gets: the options plus its scratch directory (created and removed by parse.ts). */
export interface OcrChildOptions extends OcrOptions {
  workDir: string;
  /** util-linux prlimit and the CPU seconds to allow each program (at most the parser's own limit, which a program cannot raise). */
  prlimit?: { path: string; cpuSeconds: number };
  /** The programs' environment, besides OMP_THREAD_LIMIT and TMPDIR: PATH and, when set, TESSDATA_PREFIX. */
  env: Record<string, string>;
}

export interface OcrSettings {
  /** `auto`: on when tesseract and pdftoppm are installed. */
  enabled: boolean | 'auto';
  /** A name looked up on PATH, or a path. */
  tesseractBin: string;
  pdftoppmBin: string;
  languages: string;
  dpi: number;
  concurrency: number;
  pageTimeoutMs: number;
  timeoutMs: number;
  minConfidence: number;
  minChars: number;
}

export interface OcrResolution {
  /** null: OCR is off (see `reason`). */
  options: OcrOptions | null;
  /** Why OCR is off, for the logs. */
  reason?: string;
  /** A setting that cannot work (OCR asked for but not installed, a language missing): the worker must not start. */
  problem?: string;
  /** The variable to change for `problem`. */
  variable?: 'OCR_ENABLED' | 'OCR_LANGUAGES' | 'OCR_TESSERACT_BIN';
}

/** The Debian package that brings a tesseract language: tesseract-ocr-eng, tesseract-ocr-chi-sim, … */
export function languagePackage(language: string): string {
  return `tesseract-ocr-${language
    .toLowerCase()
    .replace(/^script\//, 'script-')
    .replace(/_/g, '-')}`;
}

export const DEFAULT_OCR_CONCURRENCY = Math.max(1, Math.floor(availableParallelism() / 2));

/** An executable file: `name` itself when it contains a slash, else the first match on `path`. */
export function findExecutable(name: string, path = ''): string | null {
  const candidates = name.includes('/')
    ? [resolve(name)]
    : path
        .split(delimiter)
        .filter(isAbsolute)
        .map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not there, or not executable
    }
  }
  return null;
}

/** Languages tesseract has data for (`tesseract --list-langs`), or why they could not be listed. */
export function installedLanguages(tesseract: string, env: NodeJS.ProcessEnv): string[] | Error {
  const run = spawnSync(tesseract, ['--list-langs'], {
    env: { PATH: env.PATH ?? '/usr/bin:/bin', ...(env.TESSDATA_PREFIX ? { TESSDATA_PREFIX: env.TESSDATA_PREFIX } : {}) },
    encoding: 'utf8',
    timeout: 15_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (run.error) return run.error;
  if (run.status !== 0)
    return new Error(`${tesseract} --list-langs exited with ${run.status ?? run.signal}: ${run.stderr.trim().slice(-300)}`);
  // "List of available languages in "/usr/share/tesseract-ocr/5/tessdata/" (2):" then one per line.
  return run.stdout
    .split('\n')
    .slice(1)
    .map((l) => l.trim())
    .filter(Boolean);
}

const resolved = new Map<string, OcrResolution>();

/**
 * Decides whether this worker OCRs, and with which programs. Memoised: the handler asks for
 * every document. `env` supplies PATH (and TESSDATA_PREFIX, where tesseract finds languages).
 */
export function resolveOcr(settings: OcrSettings, env: NodeJS.ProcessEnv): OcrResolution {
  const key = JSON.stringify([settings, env.PATH, env.TESSDATA_PREFIX]);
  const known = resolved.get(key);
  if (known) return known;
  const result = probe(settings, env);
  resolved.set(key, result);
  return result;
}

function probe(settings: OcrSettings, env: NodeJS.ProcessEnv): OcrResolution {
  if (settings.enabled === false) return { options: null, reason: 'OCR_ENABLED is false' };
  const tesseract = findExecutable(settings.tesseractBin, env.PATH);
  const pdftoppm = findExecutable(settings.pdftoppmBin, env.PATH);
  const missing = [
    ...(tesseract ? [] : [`${settings.tesseractBin} (Debian package tesseract-ocr)`]),
    ...(pdftoppm ? [] : [`${settings.pdftoppmBin} (Debian package poppler-utils)`]),
  ];
  if (!tesseract || !pdftoppm) {
    const reason = `not installed: ${missing.join(', ')}`;
    return settings.enabled === 'auto'
      ? { options: null, reason }
      : { options: null, reason, problem: `OCR_ENABLED is true but ${reason}`, variable: 'OCR_ENABLED' };
  }
  const languages = installedLanguages(tesseract, env);
  if (languages instanceof Error) {
    return {
      options: null,
      reason: languages.message,
      problem: `cannot run ${tesseract}: ${languages.message}`,
      variable: 'OCR_TESSERACT_BIN',
    };
  }
  const absent = settings.languages.split('+').filter((l) => !languages.includes(l));
  if (absent.length) {
    const reason = `tesseract has no data for ${absent.join(', ')} (installed: ${languages.join(', ') || 'none'}); install ${absent.map(languagePackage).join(', ')}`;
    return { options: null, reason, problem: `${reason}, or set OCR_ENABLED=false`, variable: 'OCR_LANGUAGES' };
  }
  const { languages: lang, dpi, concurrency, pageTimeoutMs, timeoutMs, minConfidence, minChars } = settings;
  return { options: { tesseract, pdftoppm, languages: lang, dpi, concurrency, pageTimeoutMs, timeoutMs, minConfidence, minChars } };
}
