import type { AnswerCache } from '@lib/answers/cache.js';
import { answerCacheKey } from '@lib/answers/cache.js';
import type { TokenBudget } from '@lib/answers/budget.js';
import type { AnswerPublisher } from '@lib/answers/stream.js';
import { Prisma, sqlOf, type Message, type PrismaClient } from '@lib/db/client.js';
import type { Logger } from '@lib/logger.js';
import type { ChatModel } from '@lib/model/chat.js';
import { ModelError } from '@lib/model/errors.js';
import type { Retrieval } from '@lib/search/retrieval.js';
import {
  answerMessages,
  cleanRewrite,
  coverage,
  extractiveAnswer,
  groundAnswer,
  notCoveredAnswer,
  OFFLINE_VERSION,
  PROMPT_VERSION,
  rewriteMessages,
  socraticHint,
  standaloneQuestion,
} from '@lib/tutor/index.js';
import type { GroundedAnswer, HistoryTurn, TutorPassage } from '@lib/tutor/types.js';
import type { TutorMetrics } from './metrics.js';

export interface AnswerConfig {
  /** Passages retrieved for an answer. */
  passages: number;
  /** History sent to the model, in approximate tokens. */
  maxHistoryTokens: number;
  /** Turns of history read from the conversation. */
  maxHistoryTurns: number;
  /** Pieces of text are gathered for this long before they are published (0: each as it comes). */
  flushMs: number;
}

export interface AnswerDeps {
  prisma: PrismaClient;
  retrieval: Retrieval;
  model: ChatModel | null;
  publisher: AnswerPublisher;
  cache: AnswerCache;
  budget: TokenBudget;
  metrics: TutorMetrics;
  config: AnswerConfig;
}

export type Engine = 'OFFLINE' | 'MODEL';

const MESSAGES: Record<string, string> = {
  MODEL_UNAVAILABLE: 'The tutor’s language model is not reachable right now. Try again in a minute.',
  MODEL_ERROR: 'The tutor’s language model refused or garbled this answer. Try asking again, perhaps in other words.',
};

/** Raised when the answer was cancelled while it was being written. */
class Cancelled extends Error {}
/** Raised when a later attempt of the same answer has taken over (this worker lost its job). */
class Superseded extends Error {}

/**
 * Writes one answer: makes the question standalone, retrieves passages, decides
 * whether they cover it, then answers (replayed from the cache, written by the
 * model, or extracted offline), publishing the text as it comes and saving the
 * message with its checked citations. Runs at least once per message: a rerun
 * after a crash starts again (a `reset` event tells subscribers).
 */
export function createAnswerHandler(deps: AnswerDeps) {
  const { prisma, publisher, metrics, config } = deps;
  const engine: Engine = deps.model ? 'MODEL' : 'OFFLINE';

  return async function answer(messageId: string, ctx: { log: Logger; signal: AbortSignal }): Promise<string> {
    const started = Date.now();
    const message = await startAttempt(prisma, messageId, config.maxHistoryTurns);
    if (!message) return 'skipped';
    const attempt = message.attempts;
    // From here on this attempt's events win over any earlier attempt still writing.
    if (attempt > 1) await publisher.publish(messageId, { type: 'reset' }, attempt);
    let superseded = false;

    let text = '';
    let firstAt: number | undefined;
    let pending = '';
    let timer: NodeJS.Timeout | undefined;
    let flushing: Promise<unknown> = Promise.resolve();
    const flush = () => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (!pending) return flushing;
      const piece = pending;
      pending = '';
      flushing = flushing.then(async () => {
        if (superseded) return;
        if ((await publisher.publish(messageId, { type: 'delta', text: piece }, attempt)) === null) superseded = true;
      });
      return flushing;
    };
    const emit = (piece: string) => {
      if (superseded) throw new Superseded();
      if (!piece) return;
      const first = firstAt === undefined;
      if (first) {
        firstAt = Date.now();
        metrics.timeToFirstToken.observe({ engine }, (firstAt - started) / 1000);
      }
      text += piece;
      pending += piece;
      // The first piece goes out at once (the time to first token); later ones are gathered for flushMs.
      if (first || config.flushMs <= 0) void flush();
      // A timer per answer, not one clock for all: answers' pieces then reach Redis and the routers
      // spread out, not all in one burst a tick (200 answers on one clock: delivery p99 138 ms, not 30).
      else timer ??= setTimeout(flush, config.flushMs);
    };
    const emitAll = async (content: string) => {
      // Offline and cached answers are ready at once; they still arrive as a stream, a sentence at a time.
      for (const piece of content.match(/[^.!?\n]*[.!?\n]*\s*/g) ?? [content]) {
        if (ctx.signal.aborted) throw new Cancelled();
        emit(piece);
      }
      await flush();
    };

    const finish = async (
      outcome: string,
      answerEngine: Engine,
      result: GroundedAnswer,
      extra: Partial<Pick<Message, 'model' | 'promptTokens' | 'completionTokens' | 'cached' | 'standaloneQuestion'>> = {},
    ) => {
      if (timer) clearTimeout(timer);
      await flush();
      if (superseded) throw new Superseded();
      // The answer saved (if this attempt still owns it) and its conversation touched, in one statement
      // that returns the final row: the done event carries it, so routers need not read it back.
      const now = new Date();
      const [saved] = await sqlOf(prisma)<Message>(Prisma.sql`
        WITH saved AS (
          UPDATE "Message" SET status = 'COMPLETE', content = ${result.content}, citations = ${JSON.stringify(result.citations)}::jsonb,
            grounded = ${result.grounded}, "droppedMarkers" = ${result.droppedMarkers}, engine = ${answerEngine},
            "completedAt" = ${now}, "updatedAt" = ${now},
            model = coalesce(${extra.model ?? null}::text, model),
            "promptTokens" = coalesce(${extra.promptTokens ?? null}::int, "promptTokens"),
            "completionTokens" = coalesce(${extra.completionTokens ?? null}::int, "completionTokens"),
            cached = coalesce(${extra.cached ?? null}::boolean, cached),
            "standaloneQuestion" = coalesce(${extra.standaloneQuestion ?? null}::text, "standaloneQuestion")
          WHERE id = ${messageId}::uuid AND status = 'GENERATING' AND attempts = ${attempt}
          RETURNING *
        ), touched AS (
          UPDATE "Conversation" SET "updatedAt" = ${now} WHERE id IN (SELECT "conversationId" FROM saved)
        )
        SELECT * FROM saved`);
      if (!saved) {
        const current = await prisma.message.findUnique({ where: { id: messageId }, select: { status: true } });
        if (current?.status === 'CANCELLED') return settleCancelled();
        throw new Superseded();
      }
      await publisher.publish(
        messageId,
        { type: 'done', status: 'COMPLETE', message: JSON.parse(JSON.stringify(saved)) as Record<string, unknown> },
        attempt,
      );
      metrics.answers.inc({ outcome, engine: answerEngine });
      if (result.droppedMarkers) metrics.droppedMarkers.inc(result.droppedMarkers);
      ctx.log.info(
        {
          messageId,
          outcome,
          engine: answerEngine,
          grounded: result.grounded,
          citations: result.citations.length,
          ms: Date.now() - started,
        },
        'answer written',
      );
      return outcome;
    };

    /** Cancelled while it was written: keep the text so far, tell subscribers. */
    const settleCancelled = async () => {
      if (timer) clearTimeout(timer);
      await flush().catch(() => undefined);
      await prisma.message.updateMany({ where: { id: messageId, status: 'CANCELLED' }, data: { content: text } });
      await publisher.publish(messageId, { type: 'done', status: 'CANCELLED' });
      metrics.answers.inc({ outcome: 'cancelled', engine });
      ctx.log.info({ messageId }, 'answer cancelled');
      return 'cancelled';
    };

    try {
      const { question, history } = message;

      // A follow-up becomes a standalone question before retrieval.
      let standalone = standaloneQuestion(question, history);
      if (deps.model && history.length) {
        try {
          const rewritten = await deps.model.completeChat({
            messages: rewriteMessages(question, history),
            maxTokens: 100,
            signal: ctx.signal,
          });
          standalone = cleanRewrite(rewritten.text, question, history);
          countTokens(rewritten.usage.promptTokens, rewritten.usage.completionTokens);
        } catch (err) {
          if (ctx.signal.aborted) throw new Cancelled();
          ctx.log.warn({ err: (err as Error).message }, 'question rewrite failed; using the offline rewrite');
        }
      }

      const passages = await retrieve(deps, message, standalone);
      const covers = coverage(standalone, passages);
      ctx.log.debug({ messageId, standalone, passages: passages.length, coverage: covers.score }, 'passages retrieved');
      if (!covers.covered) {
        await emitAll(notCoveredAnswer().content);
        return await finish('not_covered', engine, notCoveredAnswer(), { standaloneQuestion: standalone });
      }

      const key = answerCacheKey({
        promptVersion: deps.model ? PROMPT_VERSION : OFFLINE_VERSION,
        engine,
        model: deps.model?.model ?? null,
        mode: message.mode,
        question: standalone,
        courseId: message.courseId,
        searchVersion: message.searchVersion ?? 0,
        chunkIds: passages.map((p) => p.chunkId),
      });
      const hit = await deps.cache.get(key).catch(() => undefined);
      metrics.cache.inc({ result: hit ? 'hit' : 'miss' });
      if (hit) {
        await emitAll(hit.content);
        return await finish('complete', engine, hit, { model: hit.model, cached: true, standaloneQuestion: standalone });
      }

      let result: GroundedAnswer;
      let usage: { promptTokens: number; completionTokens: number } | undefined;
      if (deps.model) {
        const stream = deps.model.streamChat({
          messages: answerMessages({ question, passages, history, mode: message.mode, maxHistoryTokens: config.maxHistoryTokens }),
          signal: ctx.signal,
        });
        const writing = Date.now();
        for await (const piece of stream) emit(piece);
        const final = await stream.final();
        usage = { promptTokens: final.usage.promptTokens, completionTokens: final.usage.completionTokens };
        countTokens(usage.promptTokens, usage.completionTokens);
        const seconds = (Date.now() - writing) / 1000;
        if (seconds > 0 && usage.completionTokens > 0) metrics.tokensPerSecond.observe(usage.completionTokens / seconds);
        result = groundAnswer(final.text, passages);
      } else {
        result = message.mode === 'SOCRATIC' ? socraticHint(standalone, passages) : extractiveAnswer(standalone, passages);
        await emitAll(result.content);
      }
      await deps.cache
        .set(key, { ...result, model: deps.model?.model ?? null })
        .catch((err) => ctx.log.warn({ err: (err as Error).message }, 'answer cache write failed'));
      return await finish('complete', engine, result, {
        model: deps.model?.model ?? null,
        standaloneQuestion: standalone,
        ...(usage ?? {}),
      });
    } catch (err) {
      if (timer) clearTimeout(timer);
      if (err instanceof Superseded) {
        ctx.log.warn({ messageId, attempt }, 'answer taken over by a later attempt; this one stops');
        return 'superseded';
      }
      if (err instanceof Cancelled || ctx.signal.aborted || (err instanceof ModelError && err.code === 'MODEL_ABORTED')) {
        return settleCancelled();
      }
      if (err instanceof ModelError) {
        metrics.modelErrors.inc({ code: err.code });
        ctx.log.warn({ messageId, code: err.code, err: err.message }, 'model failed');
        await flush().catch(() => undefined);
        await failAnswer(deps, messageId, err.code, MESSAGES[err.code] ?? err.message, text);
        metrics.answers.inc({ outcome: 'failed', engine });
        return 'failed';
      }
      throw err; // the runner retries, then fails the answer
    }

    function countTokens(prompt: number, completion: number) {
      metrics.tokens.inc({ kind: 'prompt' }, prompt);
      metrics.tokens.inc({ kind: 'completion' }, completion);
      void deps.budget.add(message!.userId, prompt + completion).catch(() => undefined);
    }
  };
}

/** Ends an answer FAILED (keeping any text it had) and tells subscribers. */
export async function failAnswer(
  deps: Pick<AnswerDeps, 'prisma' | 'publisher'>,
  messageId: string,
  code: string,
  errorMessage: string,
  content?: string,
) {
  const updated = await deps.prisma.message.updateMany({
    where: { id: messageId, status: 'GENERATING' },
    data: { status: 'FAILED', errorCode: code, errorMessage, completedAt: new Date(), ...(content ? { content } : {}) },
  });
  if (updated.count) await deps.publisher.publish(messageId, { type: 'done', status: 'FAILED' });
  return updated.count > 0;
}

/** What an answer is written from, read as its attempt starts. */
interface AnswerStart {
  id: string;
  conversationId: string;
  courseId: string;
  userId: string;
  mode: Message['mode'];
  documentIds: string[];
  /** This attempt's number (the message's attempts, counted up as it started). */
  attempts: number;
  /** The question it answers ('' if none). */
  question: string;
  /** The conversation's finished turns before the question, oldest first. */
  history: HistoryTurn[];
  /** The course's search version as the attempt started (null: the course is gone). */
  searchVersion: number | null;
}

/**
 * Starts an attempt at an answer still GENERATING, in one statement: counts the attempt (and
 * empties the text of an earlier one), and reads the question, up to `maxTurns` turns of history
 * before it and the course's search version. Null when the message is not an answer being written.
 */
async function startAttempt(prisma: PrismaClient, messageId: string, maxTurns: number): Promise<AnswerStart | null> {
  // Straight on the pool (sqlOf), as the other statements every answer makes.
  const [row] = await sqlOf(prisma)<
    Omit<AnswerStart, 'question' | 'history'> & { question: string | null; history: HistoryTurn[] }
  >(Prisma.sql`
    WITH m AS (
      UPDATE "Message" SET attempts = attempts + 1, content = '', "updatedAt" = ${new Date()}
      WHERE id = ${messageId}::uuid AND role = 'ASSISTANT' AND status = 'GENERATING'
      RETURNING id, "conversationId", "courseId", "userId", mode, "replyToId", "documentIds", attempts
    )
    SELECT m.id, m."conversationId", m."courseId", m."userId", m.mode::text AS mode, m."documentIds"::text[] AS "documentIds",
      m.attempts, q.content AS question, c."searchVersion" AS "searchVersion",
      (SELECT coalesce(json_agg(json_build_object('role', h.role, 'content', h.content) ORDER BY h."createdAt", h.id), '[]'::json)
        FROM (SELECT role, content, "createdAt", id FROM "Message"
              WHERE "conversationId" = m."conversationId" AND "createdAt" < q."createdAt" AND status = 'COMPLETE'
              ORDER BY "createdAt" DESC, id DESC LIMIT ${maxTurns}) h) AS history
    FROM m LEFT JOIN "Message" q ON q.id = m."replyToId" LEFT JOIN "Course" c ON c.id = m."courseId"`);
  return row ? { ...row, question: row.question ?? '' } : null;
}

/** The passages for a question, numbered from 1 in ranking order (chunks of documents no longer READY left out). */
async function retrieve(deps: AnswerDeps, message: AnswerStart, question: string): Promise<TutorPassage[]> {
  const ranked = await deps.retrieval.search({
    courseId: message.courseId,
    query: question.slice(0, 1000),
    limit: deps.config.passages,
    documentIds: message.documentIds.length ? message.documentIds : undefined,
    searchVersion: message.searchVersion ?? undefined,
  });
  if (!ranked.length) return [];
  const chunks = await sqlOf(deps.prisma)<Omit<TutorPassage, 'n' | 'score'>>(Prisma.sql`
    SELECT c.id AS "chunkId", c."documentId"::text AS "documentId", d.title AS "documentTitle", c."pageStart", c."pageEnd", c.heading, c.text
    FROM "Chunk" c JOIN "Document" d ON d.id = c."documentId"
    WHERE c.id = ANY(${ranked.map((r) => r.id)}::text[]) AND d.status = 'READY'`);
  const byId = new Map(chunks.map((c) => [c.chunkId, c]));
  const passages: TutorPassage[] = [];
  for (const r of ranked) {
    const c = byId.get(r.id);
    if (!c) continue;
    passages.push({ ...c, n: passages.length + 1, score: r.score });
  }
  return passages;
}
