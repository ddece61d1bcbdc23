/**
 * OCR of one PDF page, run inside the parser child (parse-child.ts): `pdftoppm` renders the page
 * to a grayscale PGM in the child's scratch directory (uncompressed, about 4 MB for A4 at 200 dpi:
 * PNG compression would cost about 0.5 s a page, ten times the rendering), `tesseract` reads it (TSV, for word
 * confidences), ocr-text.ts turns that into text and judges it. Both programs get a minimal
 * environment (`OMP_THREAD_LIMIT=1`: one core each; concurrency comes from running pages side by
 * side), share one deadline per page (`pageTimeoutMs`, after which they are killed and the page
 * is skipped) and, with prlimit, a CPU-time limit of their own. They stay in the parser's process
 * group, so whatever kills the parser (its memory or time limit, a cancel) kills them too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { judgeOcrPage, ocrPageText, type OcrOutcome } from './ocr-text.js';
import type { OcrChildOptions } from './ocr.js';

/** A page's image is kept under about this many pixels (A4 at 200 dpi is 3.9 million): a poster-sized page is rendered at a lower resolution. */
const MAX_PIXELS = 40_000_000;
const MIN_DPI = 30;
/** Tesseract's TSV for a dense page is under 100 KB. */
const MAX_TSV_CHARS = 16 * 1024 * 1024;
const STDERR_TAIL = 2000;

export type OcrPageResult = OcrOutcome & { text: string };

const running = new Set<ChildProcess>();

/** Kills every program still running (the parser is going away). Synchronous: usable in an exit handler. */
export function killOcrPrograms(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

/** The resolution for a page of this size (PDF points): `dpi`, lowered so that the image stays under MAX_PIXELS. */
export function renderDpi(widthPt: number, heightPt: number, dpi: number): number {
  const squareInches = (widthPt / 72) * (heightPt / 72);
  if (!(squareInches > 0)) return dpi;
  return Math.max(MIN_DPI, Math.min(dpi, Math.floor(Math.sqrt(MAX_PIXELS / squareInches))));
}

interface ProgramRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  error?: Error;
}

function run(opts: OcrChildOptions, program: string, args: string[], deadline: number, keepStdout: boolean): Promise<ProgramRun> {
  const remaining = deadline - Date.now();
  if (remaining <= 0) return Promise.resolve({ code: null, signal: null, stdout: '', stderr: '', timedOut: true });
  const cpu = opts.prlimit?.cpuSeconds;
  const [command, argv] = opts.prlimit ? [opts.prlimit.path, [`--cpu=${cpu}:${cpu}`, '--core=0', '--', program, ...args]] : [program, args];
  return new Promise((resolve) => {
    const child = spawn(command, argv, {
      cwd: opts.workDir,
      env: { ...opts.env, OMP_THREAD_LIMIT: '1', TMPDIR: opts.workDir },
      stdio: ['ignore', keepStdout ? 'pipe' : 'ignore', 'pipe'],
    });
    running.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let error: Error | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, remaining);
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (data: string) => {
      stdout += data;
      if (stdout.length > MAX_TSV_CHARS) {
        error = new Error(`more than ${MAX_TSV_CHARS} characters of output`);
        child.kill('SIGKILL');
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (data: string) => {
      stderr = (stderr + data).slice(-STDERR_TAIL);
    });
    let done = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, signal, stdout, stderr, timedOut, ...(error ? { error } : {}) });
    };
    child.on('error', (err) => {
      error ??= err;
      if (child.pid === undefined) finish(null, null); // never started: no 'exit' follows
    });
    // 'close' once the output is complete; after 'exit', a moment later at most, in case a process the program
    // started holds its output open.
    child.on('close', finish);
    child.on('exit', (code, signal) => {
      setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish(code, signal);
      }, 500).unref();
    });
  });
}

function failure(what: string, r: ProgramRun): string {
  if (r.error) return `${what}: ${r.error.message}`;
  const how = r.signal ? `signal ${r.signal}` : `exit code ${r.code}`;
  const detail = r.stderr.trim().split('\n').slice(-2).join(' | ');
  return `${what} failed (${how})${detail ? `: ${detail}` : ''}`;
}

/**
 * Renders and reads page `page` (1-based) of `file`, `widthPt` x `heightPt` points. Never
 * throws for the page's sake: a page that cannot be rendered or read, or not in time, is
 * `skipped` with the reason.
 */
export async function ocrPdfPage(
  file: string,
  page: number,
  widthPt: number,
  heightPt: number,
  opts: OcrChildOptions,
): Promise<OcrPageResult> {
  const deadline = Date.now() + opts.pageTimeoutMs;
  const dpi = renderDpi(widthPt, heightPt, opts.dpi);
  const prefix = join(opts.workDir, `page-${page}`);
  const image = `${prefix}.pgm`;
  const timeout = { outcome: 'skipped', reason: `over the page time limit of ${opts.pageTimeoutMs} ms`, text: '' } as const;
  try {
    const render = await run(
      opts,
      opts.pdftoppm,
      ['-q', '-r', String(dpi), '-gray', '-cropbox', '-singlefile', '-f', String(page), '-l', String(page), file, prefix],
      deadline,
      false,
    );
    if (render.timedOut) return timeout;
    const rendered = await stat(image).then(
      (s) => s.size > 0,
      () => false,
    );
    if (render.error || render.code !== 0 || !rendered) return { outcome: 'skipped', reason: failure('rendering', render), text: '' };

    const read = await run(
      opts,
      opts.tesseract,
      [image, 'stdout', '-l', opts.languages, '--psm', '3', '--dpi', String(dpi), 'tsv'],
      deadline,
      true,
    );
    if (read.timedOut) return timeout;
    if (read.error || read.code !== 0) return { outcome: 'skipped', reason: failure('tesseract', read), text: '' };
    const result = ocrPageText(read.stdout);
    const judged = judgeOcrPage(result, opts);
    return { ...judged, text: judged.outcome === 'read' ? result.text : '' };
  } finally {
    await rm(image, { force: true });
  }
}
