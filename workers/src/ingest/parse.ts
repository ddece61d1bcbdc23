/**
 * Parses an untrusted document in a separate, disposable process (parse-child.ts) so that
 * whatever the file does (a compression bomb, an endless loop, a crash in pdfjs) costs that
 * process, never this one. Limits, all enforced from here:
 *
 * - memory: the resident memory (VmRSS in /proc/<pid>/status) of the child and of the programs it
 *   runs for OCR (found through /proc/<pid>/task/<pid>/children) is polled every 50 ms, and the
 *   child is killed above `memoryLimitMb` in all -> TOO_LARGE. Its V8 heap is capped at the same
 *   size (`--max-old-space-size`). Where util-linux `prlimit` exists, the kernel also caps its
 *   writable memory (RLIMIT_DATA, at 2 x limit + 256 MB: a backstop for an allocation burst
 *   between two polls), its CPU time (RLIMIT_CPU, so that it dies even if this process is
 *   killed without cleaning up) and core dumps (none). Address space (RLIMIT_AS) cannot be
 *   used: V8 and WebAssembly reserve gigabytes of it up front; measured here, the child under
 *   tsx fails to start even with 16 GB, and plain Node parsing a PDF needs more than 8 GB;
 * - time: killed after `timeoutMs` from spawn (start-up included, about 0.3-0.6 s) -> TIMEOUT;
 *   once it starts OCR, `ocr.timeoutMs` more. Each OCR'd page has its own limit, `ocr.pageTimeoutMs`,
 *   enforced by the child (a page over it is skipped, the document goes on);
 * - size: more than `maxPages` pages (checked as soon as the page count is known, before any
 *   text is extracted) or more than `maxChars` characters of text (checked by the child before
 *   it sends a page, and here) -> TOO_LARGE;
 * - `signal`: aborting kills the child and rejects with the signal's reason.
 * The child leads its own process group, and every kill is of the group: the OCR programs
 * (pdftoppm, tesseract) die with it. Their scratch directory is created here and removed before
 * the promise settles, whatever happened.
 * A child that dies any other way (crash, signal) -> MALFORMED_FILE. A child that cannot even
 * start (broken install) rejects with a plain Error: that is not the file's fault.
 *
 * The child runs with a minimal environment (no database URLs, no keys) and without
 * `eval`/`new Function` (--disallow-code-generation-from-strings). Children still running when
 * this process exits are killed; a child whose parent dies without that (SIGKILL) exits when its
 * IPC channel closes (killing its OCR programs and removing their scratch directory), or at the
 * latest at its CPU limit.
 *
 * PDF pages come in any order (pages with a text layer first, OCR'd ones as they finish); the
 * result has them in page order.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processEnv } from '@lib/env.js';
import { MESSAGES } from './messages.js';
import type { OcrChildOptions, OcrOptions } from './ocr.js';
import type { OcrOutcome } from './ocr-text.js';
import { decodeText, markdownTitle, type ChildMessage } from './parse-child.js';
import { IngestError, isIngestErrorCode, type DocumentFormat, type ParsedDocument, type ParsedPage } from './types.js';

export interface ParseOptions {
  path: string;
  format: DocumentFormat;
  maxPages: number;
  maxChars: number;
  timeoutMs: number;
  memoryLimitMb: number;
  signal?: AbortSignal;
  /**
   * Called after each page arrives, with the document's page count, how many pages have arrived
   * so far (pages do not arrive in order when some are OCR'd), whether this one was OCR'd, and its
   * text (as in the result: pages can be chunked while the next ones are read). Not called for
   * plain text and Markdown (read in this process at once). An exception thrown here aborts the parse.
   */
  onPage?: (page: number, pages: number, info: { received: number; ocr: boolean; text: string }) => void;
  /** Called when OCR of a page starts. An exception thrown here aborts the parse. */
  onOcrPage?: (page: number, pages: number) => void;
  /**
   * Reads PDF pages that have no text layer, or one that does not decode to words, with OCR.
   * Absent: OCR is off, and such pages stay empty (or `unreadablePages`).
   */
  ocr?: OcrOptions | null;
  /**
   * PDF pages whose text layer is garbage (fonts without a Unicode map) are left out and listed in
   * `unreadablePages`. Above this share of the pages that had any text, the whole file fails with
   * NO_TEXT instead. Default 1: fail only when no page is readable.
   */
  maxUnreadableShare?: number;
}

export interface OcrSummary {
  /** Pages whose text was read by OCR and indexed, ascending. */
  pages: number[];
  /** Their mean OCR confidence, 0-100 (each page's mean word confidence, averaged); null without such pages. */
  confidence: number | null;
  /** Pages OCR could not read well enough (too little text, too low a confidence, over the page time limit, a program failing), ascending. */
  skipped: { page: number; reason: string }[];
  /** Pages OCR found empty. */
  blank: number[];
}

export type ParseResult = ParsedDocument & {
  /** The parser's peak resident memory: its process and, for OCR, the programs it runs, together. */
  peakRssMb: number;
  /** Pages whose text layer is garbage (a font without a Unicode map) and that OCR did not read (it was off): their text is left out. */
  unreadablePages: number[];
  ocr: OcrSummary;
};

const NO_OCR: OcrSummary = { pages: [], confidence: null, skipped: [], blank: [] };

const POLL_MS = 50;
const EXIT_GRACE_MS = 2000;
const STDERR_TAIL = 8192;

const selfPath = fileURLToPath(import.meta.url);
/** parse-child.ts next to this file (parse-child.js when compiled). */
const CHILD_PATH = resolve(dirname(selfPath), `parse-child${extname(selfPath)}`);
/** Running from TypeScript sources: the child needs tsx too, named by absolute URL so that any cwd works. */
const LOADER_ARGS = extname(selfPath) === '.ts' ? ['--import', import.meta.resolve('tsx')] : [];
const PRLIMIT = ['/usr/bin/prlimit', '/bin/prlimit', '/usr/local/bin/prlimit'].find((p) => existsSync(p));
const HAS_PROC = existsSync('/proc/self/status');
const ENV_PASSED = ['PATH', 'TMPDIR', 'LANG', 'LC_ALL', 'TZ', 'NODE_ENV', 'TESSDATA_PREFIX'];

/** Kills the child's process group (the child and the OCR programs it started); the child alone if that fails. */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** Running parsers, and OCR scratch directories not yet removed. */
const live = new Set<ChildProcess>();
const scratchDirs = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // This process is going: nothing will wait for the parsers, nor clean up after them.
  process.once('exit', () => {
    for (const c of live) killGroup(c);
    for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
  });
}
function track(child: ChildProcess): void {
  live.add(child);
  installExitHook();
}

async function readProcStatus(pid: number): Promise<{ rssKb: number; hwmKb: number } | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const rss = /^VmRSS:\s+(\d+)/m.exec(status);
    const hwm = /^VmHWM:\s+(\d+)/m.exec(status);
    return rss ? { rssKb: Number(rss[1]), hwmKb: Number(hwm?.[1] ?? rss[1]) } : undefined; // a zombie has no VmRSS
  } catch {
    return undefined;
  }
}

/**
 * Resident memory of a process and its descendants. Children are listed per thread; Node and the
 * programs it starts fork from their main thread, so /proc/<pid>/task/<pid>/children suffices.
 * Without that file (a kernel without CONFIG_PROC_CHILDREN) only `pid` itself is counted.
 */
async function treeStatus(pid: number, depth = 0): Promise<{ rssKb: number; hwmKb: number } | undefined> {
  const own = await readProcStatus(pid);
  if (!own || depth > 3) return own;
  let children: number[] = [];
  try {
    children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).split(' ').filter(Boolean).map(Number);
  } catch {
    // gone, or not available
  }
  let rssKb = own.rssKb;
  for (const child of children) rssKb += (await treeStatus(child, depth + 1))?.rssKb ?? 0;
  return { rssKb, hwmKb: own.hwmKb };
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

function validMessage(m: unknown): m is ChildMessage {
  if (typeof m !== 'object' || m === null) return false;
  const msg = m as Record<string, unknown>;
  switch (msg.type) {
    case 'ready':
      return true;
    case 'meta':
      return Number.isSafeInteger(msg.pages) && (msg.pages as number) >= 0 && (msg.title === undefined || typeof msg.title === 'string');
    case 'ocr':
      return Number.isSafeInteger(msg.page);
    case 'page':
      return Number.isSafeInteger(msg.page) && typeof msg.text === 'string' && (msg.ocr === undefined || validOutcome(msg.ocr));
    case 'done':
      return typeof msg.maxRssKb === 'number';
    case 'error':
      return isIngestErrorCode(msg.code) && typeof msg.message === 'string';
    default:
      return false;
  }
}

function validOutcome(o: unknown): o is OcrOutcome {
  if (typeof o !== 'object' || o === null) return false;
  const { outcome, confidence, reason } = o as Record<string, unknown>;
  switch (outcome) {
    case 'read':
      return typeof confidence === 'number';
    case 'blank':
      return true;
    case 'skipped':
      return typeof reason === 'string';
    default:
      return false;
  }
}

function checkLimits(opts: ParseOptions): void {
  for (const key of ['maxPages', 'maxChars', 'timeoutMs', 'memoryLimitMb'] as const) {
    if (!(Number.isFinite(opts[key]) && opts[key] > 0))
      throw new RangeError(`parseDocument: ${key} must be a positive number, got ${opts[key]}`);
  }
  if (opts.ocr) {
    for (const key of ['dpi', 'concurrency', 'pageTimeoutMs', 'timeoutMs'] as const) {
      if (!(Number.isFinite(opts.ocr[key]) && opts.ocr[key] > 0))
        throw new RangeError(`parseDocument: ocr.${key} must be a positive number, got ${opts.ocr[key]}`);
    }
  }
}

export async function parseDocument(opts: ParseOptions): Promise<ParseResult> {
  checkLimits(opts);
  const { signal } = opts;
  if (signal?.aborted) throw abortReason(signal);
  if (opts.format === 'TEXT' || opts.format === 'MARKDOWN') return parsePlainInProcess(opts);

  const env: Record<string, string> = {};
  const parent = processEnv();
  for (const key of ENV_PASSED) if (parent[key] !== undefined) env[key] = parent[key];
  const ocr = opts.format === 'PDF' && opts.ocr ? opts.ocr : undefined;
  let ocrOptions: OcrChildOptions | undefined;
  if (ocr) {
    const workDir = await mkdtemp(resolve(tmpdir(), 'ingest-ocr-'));
    scratchDirs.add(workDir);
    installExitHook();
    ocrOptions = {
      ...ocr,
      workDir,
      // A program may lower its limits, never raise them: at most the parser's own (see runChild).
      ...(PRLIMIT
        ? { prlimit: { path: PRLIMIT, cpuSeconds: Math.min(Math.ceil(ocr.pageTimeoutMs / 1000) + 1, cpuLimit(opts, ocr)) } }
        : {}),
      env: { PATH: env.PATH ?? '/usr/bin:/bin', ...(env.TESSDATA_PREFIX ? { TESSDATA_PREFIX: env.TESSDATA_PREFIX } : {}) },
    };
  }
  try {
    return await runChild(opts, env, ocrOptions);
  } finally {
    if (ocrOptions) {
      await rm(ocrOptions.workDir, { recursive: true, force: true, maxRetries: 3 });
      scratchDirs.delete(ocrOptions.workDir);
    }
  }
}

/** The parser's CPU-time limit (soft; the hard one is 5 s more), in seconds: twice its time limit, OCR included. */
function cpuLimit(opts: ParseOptions, ocr: OcrOptions | undefined): number {
  return Math.ceil((2 * (opts.timeoutMs + (ocr?.timeoutMs ?? 0))) / 1000) + 5;
}

function runChild(opts: ParseOptions, env: Record<string, string>, ocr: OcrChildOptions | undefined): Promise<ParseResult> {
  const { signal } = opts;
  const memoryLimitKb = Math.floor(opts.memoryLimitMb * 1024);
  const nodeArgs = [
    `--max-old-space-size=${Math.max(16, Math.floor(opts.memoryLimitMb))}`,
    '--disallow-code-generation-from-strings',
    ...LOADER_ARGS,
    CHILD_PATH,
    resolve(opts.path),
    opts.format,
    String(Math.floor(opts.maxChars)),
    ...(ocr ? [JSON.stringify(ocr)] : []),
  ];
  const cpuSeconds = cpuLimit(opts, ocr);
  const dataBytes = Math.floor((2 * opts.memoryLimitMb + 256) * 1024 * 1024);
  const [command, args] = PRLIMIT
    ? [PRLIMIT, [`--cpu=${cpuSeconds}:${cpuSeconds + 5}`, `--data=${dataBytes}`, '--core=0', '--', process.execPath, ...nodeArgs]]
    : [process.execPath, nodeArgs];

  return new Promise<ParseResult>((resolvePromise, rejectPromise) => {
    // Its own process group (detached: setsid), so that one kill reaches the OCR programs too.
    const child = spawn(command, args, { cwd: dirname(CHILD_PATH), env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'], detached: true });
    track(child);

    let settled = false;
    let started = false;
    let done = false;
    let failure: unknown; // set once: the first reason to stop wins
    let pageCount: number | undefined;
    let title: string | undefined;
    let chars = 0;
    let peakKb = 0;
    const pages: ParsedPage[] = [];
    const seen = new Set<number>();
    const unreadablePages: number[] = [];
    const ocrRead: { page: number; confidence: number }[] = [];
    const ocrSkipped: { page: number; reason: string }[] = [];
    const ocrBlank: number[] = [];
    let ocrStarted = false;
    let stderr = '';

    const timers: NodeJS.Timeout[] = [];
    let exitTimer: NodeJS.Timeout | undefined;
    const kill = () => killGroup(child);
    const fail = (err: unknown) => {
      if (failure === undefined && !done) failure = err;
      kill();
    };
    const onAbort = () => fail(abortReason(signal!));
    signal?.addEventListener('abort', onAbort, { once: true });

    const spawnedAt = Date.now();
    let deadline = setTimeout(() => fail(new IngestError('TIMEOUT', MESSAGES.timeout)), opts.timeoutMs);
    timers.push(deadline);
    if (HAS_PROC) {
      let polling = false;
      timers.push(
        setInterval(() => {
          if (polling || child.pid === undefined) return;
          polling = true;
          void treeStatus(child.pid).then((status) => {
            polling = false;
            if (!status || settled) return;
            peakKb = Math.max(peakKb, status.hwmKb, status.rssKb);
            if (status.rssKb > memoryLimitKb) {
              fail(
                new IngestError('TOO_LARGE', MESSAGES.memory, {
                  cause: `parser RSS ${Math.round(status.rssKb / 1024)} MB above the ${opts.memoryLimitMb} MB limit`,
                }),
              );
            }
          });
        }, POLL_MS),
      );
    }

    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (data: string) => {
      stderr = (stderr + data).slice(-STDERR_TAIL);
    });

    const settle = () => {
      if (settled) return;
      settled = true;
      kill(); // OCR programs the child left behind, if it died
      for (const t of timers) clearInterval(t);
      clearTimeout(exitTimer);
      signal?.removeEventListener('abort', onAbort);
      live.delete(child);
      child.stderr?.destroy();
      if (failure !== undefined) return rejectPromise(failure);
      try {
        resolvePromise(result());
      } catch (err) {
        rejectPromise(err);
      }
    };

    const result = (): ParseResult => {
      if (pageCount === undefined || pages.length !== pageCount) {
        throw new IngestError('MALFORMED_FILE', MESSAGES.crashed, { cause: `parser sent ${pages.length} of ${pageCount} pages` });
      }
      pages.sort((a, b) => a.page - b.page);
      const withText = pages.filter((p) => p.text.trim()).length;
      const unreadableShare = unreadablePages.length / (withText + unreadablePages.length || 1);
      if (unreadablePages.length && (!withText || unreadableShare > (opts.maxUnreadableShare ?? 1))) {
        throw new IngestError('NO_TEXT', MESSAGES.unreadablePdf, { cause: `unreadable pages: ${unreadablePages.join(', ')}` });
      }
      ocrSkipped.sort((a, b) => a.page - b.page);
      if (!withText) {
        if (opts.format !== 'PDF') throw new IngestError('NO_TEXT', MESSAGES.noText);
        if (!ocr) throw new IngestError('NO_TEXT', MESSAGES.noTextPdf);
        if (ocrSkipped.length) {
          throw new IngestError('NO_TEXT', MESSAGES.ocrUnreadable(ocrSkipped.length), {
            cause: ocrSkipped.map((s) => `page ${s.page}: ${s.reason}`).join('; '),
          });
        }
        throw new IngestError('NO_TEXT', MESSAGES.ocrBlank);
      }
      ocrRead.sort((a, b) => a.page - b.page);
      const meanConfidence = ocrRead.length ? ocrRead.reduce((sum, p) => sum + p.confidence, 0) / ocrRead.length : null;
      return {
        format: opts.format,
        pages,
        ...(title ? { title } : {}),
        peakRssMb: Math.round(peakKb / 102.4) / 10,
        unreadablePages,
        ocr: {
          pages: ocrRead.map((p) => p.page),
          confidence: meanConfidence === null ? null : Math.round(meanConfidence * 10) / 10,
          skipped: ocrSkipped,
          blank: ocrBlank.sort((a, b) => a - b),
        },
      };
    };

    child.on('message', (raw: unknown) => {
      if (settled || failure !== undefined || done) return;
      if (!validMessage(raw)) return fail(new IngestError('MALFORMED_FILE', MESSAGES.crashed, { cause: 'invalid message from parser' }));
      const m = raw;
      switch (m.type) {
        case 'ready':
          started = true;
          return;
        case 'meta':
          if (pageCount !== undefined) return fail(new IngestError('MALFORMED_FILE', MESSAGES.crashed, { cause: 'second meta message' }));
          pageCount = m.pages;
          title = m.title;
          if (m.pages > opts.maxPages) {
            fail(new IngestError('TOO_LARGE', MESSAGES.tooManyPages(m.pages, opts.maxPages)));
          }
          return;
        case 'ocr':
          if (!ocr || pageCount === undefined || m.page < 1 || m.page > pageCount || seen.has(m.page)) {
            return fail(new IngestError('MALFORMED_FILE', MESSAGES.crashed, { cause: `unexpected OCR of page ${m.page}` }));
          }
          if (!ocrStarted) {
            // The document's OCR gets its own time, on top of the parser's.
            ocrStarted = true;
            clearTimeout(deadline);
            deadline = setTimeout(
              () => fail(new IngestError('TIMEOUT', MESSAGES.timeout, { cause: 'OCR time limit' })),
              spawnedAt + opts.timeoutMs + ocr.timeoutMs - Date.now(),
            );
            timers.push(deadline);
          }
          try {
            opts.onOcrPage?.(m.page, pageCount);
          } catch (err) {
            fail(err);
          }
          return;
        case 'page': {
          if (pageCount === undefined || m.page < 1 || m.page > pageCount || seen.has(m.page) || (m.ocr && !ocr)) {
            return fail(new IngestError('MALFORMED_FILE', MESSAGES.crashed, { cause: `unexpected page ${m.page}` }));
          }
          seen.add(m.page);
          pages.push({ page: m.page, text: m.text });
          if (m.ocr?.outcome === 'read') ocrRead.push({ page: m.page, confidence: m.ocr.confidence });
          else if (m.ocr?.outcome === 'skipped') ocrSkipped.push({ page: m.page, reason: m.ocr.reason });
          else if (m.ocr?.outcome === 'blank') ocrBlank.push(m.page);
          else if (m.unreadable) unreadablePages.push(m.page);
          chars += m.text.length;
          if (chars > opts.maxChars) {
            return fail(new IngestError('TOO_LARGE', MESSAGES.tooManyChars(opts.maxChars)));
          }
          try {
            opts.onPage?.(m.page, pageCount, { received: pages.length, ocr: m.ocr !== undefined, text: m.text });
          } catch (err) {
            fail(err);
          }
          return;
        }
        case 'done':
          done = true;
          peakKb = Math.max(peakKb, m.maxRssKb);
          // Its work is done: give it a moment to exit by itself, then make sure.
          exitTimer = setTimeout(kill, EXIT_GRACE_MS);
          return;
        case 'error':
          fail(new IngestError(m.code, m.message, m.detail ? { cause: m.detail } : undefined));
          return;
      }
    });

    child.on('error', (err) => {
      // Spawning failed (or killing did): without a pid there will be no 'exit'.
      if (failure === undefined && !done) failure = new Error(`could not start the document parser: ${err.message}`, { cause: err });
      if (child.pid === undefined) settle();
    });

    child.on('exit', (code, sig) => {
      live.delete(child);
      // Let stderr drain (a V8 out-of-memory report arrives just before the exit), but not for long.
      const finish = () => {
        if (failure === undefined && !done) failure = diagnose(code, sig);
        settle();
      };
      if (child.stderr && !child.stderr.readableEnded) {
        child.stderr.once('end', finish);
        timers.push(setTimeout(finish, 500));
      } else finish();
    });

    const diagnose = (code: number | null, sig: NodeJS.Signals | null): unknown => {
      if (
        /heap out of memory|Reached heap limit|Fatal process out of memory|allocation failed|bad_alloc|memory allocation of/i.test(stderr)
      ) {
        return new IngestError('TOO_LARGE', MESSAGES.memory, { cause: stderr.trim().split('\n').slice(-3).join(' | ') });
      }
      if (sig === 'SIGXCPU') return new IngestError('TIMEOUT', MESSAGES.timeout, { cause: 'CPU time limit' });
      const how = sig ? `signal ${sig}` : `exit code ${code}`;
      if (!started) return new Error(`the document parser failed to start (${how}): ${stderr.trim().slice(-1000)}`);
      return new IngestError('MALFORMED_FILE', MESSAGES.crashed, { cause: `parser ended with ${how}: ${stderr.trim().slice(-500)}` });
    };
  });
}

/** Parses text that is already in memory (Markdown, plain text or HTML), in the same sandbox, via a temporary file. */
export async function parseText(
  text: string,
  opts: Omit<ParseOptions, 'path' | 'format'> & { format: Exclude<DocumentFormat, 'PDF'> },
): Promise<ParseResult> {
  const dir = await mkdtemp(resolve(tmpdir(), 'ingest-'));
  try {
    const path = resolve(dir, 'document');
    await writeFile(path, text, 'utf8');
    return await parseDocument({ ...opts, path });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Plain text and Markdown need no parser that could blow up: strict decoding, a size check
 * before reading, and linear scans. They are read here, without a child process (whose start
 * costs about 0.4 s and 125 MB), so a course of thousands of short texts ingests quickly.
 * PDF and HTML still go to the sandbox.
 */
async function parsePlainInProcess(opts: ParseOptions): Promise<ParseResult> {
  const { size } = await stat(opts.path);
  // UTF-8 needs at most 4 bytes a character: a larger file cannot fit the character budget.
  if (size > opts.maxChars * 4) throw new IngestError('TOO_LARGE', MESSAGES.tooManyChars(opts.maxChars));
  const text = decodeText(await readFile(opts.path), opts.format);
  const body = text.trim() ? text.replace(/^\n+|\s+$/g, '') : '';
  if (body.length > opts.maxChars) throw new IngestError('TOO_LARGE', MESSAGES.tooManyChars(opts.maxChars));
  if (!body) throw new IngestError('NO_TEXT', MESSAGES.noText);
  const title = opts.format === 'MARKDOWN' ? markdownTitle(text) : undefined;
  return {
    format: opts.format,
    pages: [{ page: 1, text: body }],
    ...(title ? { title } : {}),
    peakRssMb: 0,
    unreadablePages: [],
    ocr: NO_OCR,
  };
}
