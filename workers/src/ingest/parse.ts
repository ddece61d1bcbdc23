/**
 * Parses an untrusted document in a separate, disposable process (parse-child.ts) so that
 * whatever the file does (a compression bomb, an endless loop, a crash in pdfjs) costs that
 * process, never this one. Limits, all enforced from here:
 *
 * - memory: the child's resident memory (VmRSS in /proc/<pid>/status) is polled every 50 ms and
 *   the child is killed above `memoryLimitMb` -> TOO_LARGE. Its V8 heap is capped at the same
 *   size (`--max-old-space-size`). Where util-linux `prlimit` exists, the kernel also caps its
 *   writable memory (RLIMIT_DATA, at 2 x limit + 256 MB: a backstop for an allocation burst
 *   between two polls), its CPU time (RLIMIT_CPU, so that it dies even if this process is
 *   killed without cleaning up) and core dumps (none). Address space (RLIMIT_AS) cannot be
 *   used: V8 and WebAssembly reserve gigabytes of it up front; measured here, the child under
 *   tsx fails to start even with 16 GB, and plain Node parsing a PDF needs more than 8 GB;
 * - time: killed after `timeoutMs` from spawn (start-up included, about 0.3-0.6 s) -> TIMEOUT;
 * - size: more than `maxPages` pages (checked as soon as the page count is known, before any
 *   text is extracted) or more than `maxChars` characters of text (checked by the child before
 *   it sends a page, and here) -> TOO_LARGE;
 * - `signal`: aborting kills the child and rejects with the signal's reason.
 * A child that dies any other way (crash, signal) -> MALFORMED_FILE. A child that cannot even
 * start (broken install) rejects with a plain Error: that is not the file's fault.
 *
 * The child runs with a minimal environment (no database URLs, no keys) and without
 * `eval`/`new Function` (--disallow-code-generation-from-strings). Children still running when
 * this process exits are killed; a child whose parent dies without that (SIGKILL) exits when its
 * IPC channel closes, or at the latest at its CPU limit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processEnv } from '@lib/env.js';
import { MESSAGES } from './messages.js';
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
  /** Called after each page arrives, with the document's page count. An exception thrown here aborts the parse. */
  onPage?: (page: number, pages: number) => void;
  /**
   * PDF pages whose text layer is garbage (fonts without a Unicode map) are left out and listed in
   * `unreadablePages`. Above this share of the pages that had any text, the whole file fails with
   * NO_TEXT instead. Default 1: fail only when no page is readable.
   */
  maxUnreadableShare?: number;
}

export type ParseResult = ParsedDocument & {
  /** The parser process's peak resident memory. */
  peakRssMb: number;
  /** Pages whose text layer is garbage (a font without a Unicode map): their text is left out. */
  unreadablePages: number[];
};

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
const ENV_PASSED = ['PATH', 'TMPDIR', 'LANG', 'LC_ALL', 'TZ', 'NODE_ENV'];

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  live.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
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
    case 'page':
      return Number.isSafeInteger(msg.page) && typeof msg.text === 'string';
    case 'done':
      return typeof msg.maxRssKb === 'number';
    case 'error':
      return isIngestErrorCode(msg.code) && typeof msg.message === 'string';
    default:
      return false;
  }
}

function checkLimits(opts: ParseOptions): void {
  for (const key of ['maxPages', 'maxChars', 'timeoutMs', 'memoryLimitMb'] as const) {
    if (!(Number.isFinite(opts[key]) && opts[key] > 0))
      throw new RangeError(`parseDocument: ${key} must be a positive number, got ${opts[key]}`);
  }
}

export async function parseDocument(opts: ParseOptions): Promise<ParseResult> {
  checkLimits(opts);
  const { signal } = opts;
  if (signal?.aborted) throw abortReason(signal);
  if (opts.format === 'TEXT' || opts.format === 'MARKDOWN') return parsePlainInProcess(opts);

  const memoryLimitKb = Math.floor(opts.memoryLimitMb * 1024);
  const nodeArgs = [
    `--max-old-space-size=${Math.max(16, Math.floor(opts.memoryLimitMb))}`,
    '--disallow-code-generation-from-strings',
    ...LOADER_ARGS,
    CHILD_PATH,
    resolve(opts.path),
    opts.format,
    String(Math.floor(opts.maxChars)),
  ];
  const cpuSeconds = Math.ceil((2 * opts.timeoutMs) / 1000) + 5;
  const dataBytes = Math.floor((2 * opts.memoryLimitMb + 256) * 1024 * 1024);
  const [command, args] = PRLIMIT
    ? [PRLIMIT, [`--cpu=${cpuSeconds}:${cpuSeconds + 5}`, `--data=${dataBytes}`, '--core=0', '--', process.execPath, ...nodeArgs]]
    : [process.execPath, nodeArgs];
  const env: NodeJS.ProcessEnv = {};
  const parent = processEnv();
  for (const key of ENV_PASSED) if (parent[key] !== undefined) env[key] = parent[key];

  return new Promise<ParseResult>((resolvePromise, rejectPromise) => {
    const child = spawn(command, args, { cwd: dirname(CHILD_PATH), env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
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
    const unreadablePages: number[] = [];
    let stderr = '';

    const timers: NodeJS.Timeout[] = [];
    let exitTimer: NodeJS.Timeout | undefined;
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    const fail = (err: unknown) => {
      if (failure === undefined && !done) failure = err;
      kill();
    };
    const onAbort = () => fail(abortReason(signal!));
    signal?.addEventListener('abort', onAbort, { once: true });

    timers.push(setTimeout(() => fail(new IngestError('TIMEOUT', MESSAGES.timeout)), opts.timeoutMs));
    if (HAS_PROC) {
      let polling = false;
      timers.push(
        setInterval(() => {
          if (polling || child.pid === undefined) return;
          polling = true;
          void readProcStatus(child.pid).then((status) => {
            polling = false;
            if (!status || settled) return;
            peakKb = Math.max(peakKb, status.hwmKb);
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
      const withText = pages.filter((p) => p.text.trim()).length;
      const unreadableShare = unreadablePages.length / (withText + unreadablePages.length || 1);
      if (unreadablePages.length && (!withText || unreadableShare > (opts.maxUnreadableShare ?? 1))) {
        throw new IngestError('NO_TEXT', MESSAGES.unreadablePdf, { cause: `unreadable pages: ${unreadablePages.join(', ')}` });
      }
      if (!withText) throw new IngestError('NO_TEXT', opts.format === 'PDF' ? MESSAGES.noTextPdf : MESSAGES.noText);
      return {
        format: opts.format,
        pages,
        ...(title ? { title } : {}),
        peakRssMb: Math.round(peakKb / 102.4) / 10,
        unreadablePages,
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
        case 'page': {
          if (pageCount === undefined || m.page !== pages.length + 1 || m.page > pageCount) {
            return fail(new IngestError('MALFORMED_FILE', MESSAGES.crashed, { cause: `unexpected page ${m.page}` }));
          }
          pages.push({ page: m.page, text: m.text });
          if (m.unreadable) unreadablePages.push(m.page);
          chars += m.text.length;
          if (chars > opts.maxChars) {
            return fail(new IngestError('TOO_LARGE', MESSAGES.tooManyChars(opts.maxChars)));
          }
          try {
            opts.onPage?.(m.page, pageCount);
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
  return { format: opts.format, pages: [{ page: 1, text: body }], ...(title ? { title } : {}), peakRssMb: 0, unreadablePages: [] };
}
