import { z } from 'zod';
import { envParts, parseEnv, processEnv } from '@lib/env.js';
import { checkRetrievalEnv, retrievalEnv } from '@lib/search/env.js';
import { chatEnv, checkChatEnv } from '@lib/model/config.js';
import { DEFAULT_OCR_CONCURRENCY, resolveOcr, type OcrResolution, type OcrSettings } from './ingest/ocr.js';

const LANGUAGES = /^[A-Za-z][A-Za-z0-9_]*(\/[A-Za-z][A-Za-z0-9_]*)?(\+[A-Za-z][A-Za-z0-9_]*(\/[A-Za-z][A-Za-z0-9_]*)?)*$/;

/** OCR of scanned PDF pages (workers/README.md, "OCR"). */
const ocrEnv = {
  /** `auto`: on when tesseract and pdftoppm are installed; `true` and they are missing: the worker does not start. */
  OCR_ENABLED: z
    .enum(['auto', 'true', 'false', '1', '0', 'yes', 'no'])
    .transform((v): boolean | 'auto' => (v === 'auto' ? 'auto' : v === 'true' || v === '1' || v === 'yes'))
    .default('auto'),
  /** Tesseract languages joined by `+`, each installed (Debian: tesseract-ocr-<lang>). */
  OCR_LANGUAGES: z
    .string()
    .regex(LANGUAGES, { message: 'must be tesseract language codes joined by +, e.g. eng or eng+deu' })
    .default('eng'),
  OCR_CONCURRENCY: envParts.positiveInt(DEFAULT_OCR_CONCURRENCY),
  OCR_DPI: z.coerce.number().int().min(72).max(600).default(200),
  OCR_PAGE_TIMEOUT_MS: envParts.ms(60_000).refine((v) => v > 0, 'must be positive'),
  OCR_TIMEOUT_MS: envParts.ms(600_000).refine((v) => v > 0, 'must be positive'),
  OCR_MIN_CONFIDENCE: z.coerce.number().min(0).max(100).default(50),
  OCR_MIN_CHARS: z.coerce.number().int().min(1).default(20),
  OCR_TESSERACT_BIN: z.string().min(1).default('tesseract'),
  OCR_PDFTOPPM_BIN: z.string().min(1).default('pdftoppm'),
  /** Where the programs are looked up (and passed on to them and to the parser child). */
  PATH: z.string().optional(),
  /** Tesseract's own variable: a directory of language data other than the packaged one. */
  TESSDATA_PREFIX: z.string().optional(),
};
type OcrEnv = z.infer<z.ZodObject<typeof ocrEnv>>;

function ocrSettings(env: OcrEnv): OcrSettings {
  return {
    enabled: env.OCR_ENABLED,
    tesseractBin: env.OCR_TESSERACT_BIN,
    pdftoppmBin: env.OCR_PDFTOPPM_BIN,
    languages: env.OCR_LANGUAGES,
    dpi: env.OCR_DPI,
    concurrency: env.OCR_CONCURRENCY,
    pageTimeoutMs: env.OCR_PAGE_TIMEOUT_MS,
    timeoutMs: env.OCR_TIMEOUT_MS,
    minConfidence: env.OCR_MIN_CONFIDENCE,
    minChars: env.OCR_MIN_CHARS,
  };
}

/** Exported for the deployment checks (tests/deploy): compose passes only these variables. */
export const schema = z
  .object({
    NODE_ENV: envParts.nodeEnv,
    HOST: envParts.host,
    /** /health, /ready and /metrics. */
    PORT: envParts.port(4010),
    LOG_LEVEL: envParts.logLevel,
    LOG_FORMAT: envParts.logFormat,
    DATABASE_URL: envParts.url,
    DB_POOL_MAX: envParts.positiveInt(5),
    REDIS_URL: envParts.url,
    BLOB_DIR: z.string().min(1).default('.data/blobs'),

    WORKER_CONCURRENCY: envParts.positiveInt(2),
    /** How long a job's lock lasts without renewal; a crashed worker's job is taken over after about this. */
    WORKER_LOCK_DURATION_MS: envParts.ms(30_000),
    WORKER_STALLED_INTERVAL_MS: envParts.ms(30_000),
    RECONCILE_INTERVAL_MS: envParts.ms(30_000),
    /** Must match the router's: uploads older than this (plus an hour) that no document uses are deleted. */
    UPLOAD_TTL_S: envParts.positiveInt(24 * 3600),

    INGEST_MAX_PAGES: envParts.positiveInt(2000),
    INGEST_MAX_CHARS: envParts.positiveInt(20_000_000),
    PARSE_TIMEOUT_MS: envParts.ms(180_000),
    PARSE_MEMORY_MB: envParts.positiveInt(1024),
    CHUNK_TARGET_CHARS: envParts.positiveInt(1200),
    CHUNK_OVERLAP_CHARS: z.coerce.number().int().min(0).default(200),
    /** Least time between two progress writes for one task. */
    PROGRESS_INTERVAL_MS: envParts.ms(250),
    ...ocrEnv,

    /** Answers written at once by this process (model calls are mostly waiting). */
    ANSWER_CONCURRENCY: envParts.positiveInt(8),
    /** A crashed worker's answer is taken over after about this long. */
    ANSWER_LOCK_DURATION_MS: envParts.ms(10_000),
    /** Passages retrieved for an answer. */
    ANSWER_PASSAGES: z.coerce.number().int().min(1).max(20).default(6),
    /** Conversation history given to the model, in approximate tokens. */
    ANSWER_HISTORY_TOKENS: envParts.positiveInt(1500),
    /**
     * Text is published in pieces gathered for this long (0: every piece at once); the first piece
     * always goes at once. 100 ms is 10 updates a second, as smooth as reading needs (a reader takes
     * in 4-5 words a second), and half the pieces of 50 ms for every worker, Redis and router to
     * carry: in bench:tutor 8-10% less CPU per answer, and with 50 askers of 20-token answers (the
     * machine saturated) the time to first token p95 116-126 ms against 148-201 (three pairs of runs).
     */
    ANSWER_FLUSH_MS: z.coerce.number().int().min(0).max(1000).default(100),
    /** GENERATING answers older than this whose job is gone are queued again or failed. */
    ANSWER_STALE_MS: envParts.ms(120_000),
    /** How long an answer stays in the answer cache; 0 turns the cache off. */
    LLM_CACHE_TTL_S: z.coerce
      .number()
      .int()
      .min(0)
      .default(24 * 3600),
    /** Model tokens one user may spend per UTC day (counted here; the chat subgraph refuses past it). */
    LLM_DAILY_TOKENS_PER_USER: z.coerce.number().int().min(0).default(200_000),
    /** The answer cache may live in a Redis that evicts; defaults to REDIS_URL. */
    CACHE_REDIS_URL: envParts.url.optional(),

    /** Exam generation (workers/README.md, "Exams"): `auto` uses the model when LLM_* configure one; `offline` never does. */
    EXAM_ENGINE: z.enum(['auto', 'offline']).default('auto'),
    /** Passages a generation draws from at most: a larger course is sampled evenly over all its material. */
    EXAM_MAX_PASSAGES: z.coerce.number().int().min(1).max(5000).default(160),
    /** Model engine: questions asked for per call, passages shown per call, calls allowed to replace dropped questions. */
    EXAM_MODEL_BATCH: z.coerce.number().int().min(1).max(20).default(5),
    EXAM_MODEL_PASSAGES: z.coerce.number().int().min(1).max(40).default(6),
    EXAM_MODEL_EXTRA_CALLS: z.coerce.number().int().min(0).max(20).default(3),
    /** A generation taking longer fails with TIMEOUT. */
    EXAM_TIMEOUT_MS: envParts.ms(300_000).refine((v) => v > 0, 'must be positive'),

    SHUTDOWN_TIMEOUT_MS: envParts.ms(30_000),
    ...retrievalEnv,
    ...chatEnv,
  })
  .superRefine((env, ctx) => {
    checkRetrievalEnv(env, ctx);
    checkChatEnv(env, ctx);
    // OCR asked for (or a language) but not installed: stop at start, not at the first scanned page.
    if (!LANGUAGES.test(env.OCR_LANGUAGES)) return; // already reported
    const { problem, variable } = resolveOcr(ocrSettings(env), { PATH: env.PATH, TESSDATA_PREFIX: env.TESSDATA_PREFIX });
    if (problem) ctx.addIssue({ code: 'custom', path: [variable ?? 'OCR_ENABLED'], message: problem });
  });

export type WorkerEnv = z.infer<typeof schema>;

export function readEnv(source = processEnv()): WorkerEnv {
  return parseEnv(schema, source);
}

/**
 * Whether this worker OCRs scanned PDF pages, and how: `options` null when it does not (then
 * `reason` says why). Probes the programs once per process (`tesseract --list-langs`).
 */
export function readOcr(source = processEnv()): OcrResolution {
  const env = parseEnv(z.object(ocrEnv), source);
  return resolveOcr(ocrSettings(env), { PATH: env.PATH, TESSDATA_PREFIX: env.TESSDATA_PREFIX });
}
