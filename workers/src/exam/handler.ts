import { UnrecoverableError } from 'bullmq';
import type { Exam, PrismaClient } from '@lib/db/client.js';
import type { ExamQuestionDraft } from '@lib/exam/index.js';
import type { ChatModel } from '@lib/model/chat.js';
import { runTask, type TaskRun } from '@lib/tasks/run.js';
import type { TaskStore } from '@lib/tasks/store.js';
import type { Handler } from '../handlers.js';
import type { ExamCache } from './cache.js';
import { generateWithModel } from './model.js';
import { GenerationTimeout, runOffline } from './offline.js';
import { loadPassages } from './passages.js';
import { draftColumns } from '@lib/exam/store.js';
import { completionMessage, failure, type GenerationSummary } from './report.js';

export interface ExamGenerationConfig {
  /** `auto`: the model when one is configured, else offline; `offline`: always offline. */
  engine: 'auto' | 'offline';
  /** Passages a generation draws from at most (a spread sample of a larger course). */
  maxPassages: number;
  /** Questions per model call, passages shown per call, and calls allowed to replace dropped questions. */
  modelBatch: number;
  modelPassages: number;
  modelExtraCalls: number;
  /** A generation taking longer fails with TIMEOUT. */
  timeoutMs: number;
  /** Least time between two progress writes. */
  progressIntervalMs: number;
}

export interface ExamGenerationDeps {
  prisma: PrismaClient;
  tasks: TaskStore;
  model: ChatModel | null;
  cache: ExamCache;
  config: ExamGenerationConfig;
}

/** A generation that ends FAILED with a stable code (no retry: it would fail the same way). */
class GenerationFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type Outcome = GenerationSummary & {
  questions: ExamQuestionDraft[];
  generation: Record<string, unknown>;
  model?: string | null;
  usage?: { promptTokens: number; completionTokens: number };
};

/**
 * Writes an exam's questions: loads the passages, runs the offline generator
 * (in a worker thread) or the model engine, then replaces the exam's questions
 * in one transaction with the task's completion. Safe to run twice (after a
 * crash): the second run replaces what the first wrote, and a cancelled task is
 * never completed. Fewer questions than asked complete the task with a message
 * that says why; none fails it (NOT_ENOUGH_MATERIAL, NO_VALID_QUESTIONS, or the
 * model's error).
 */
export function createExamHandler({ prisma, tasks, model, cache, config }: ExamGenerationDeps): Handler<'GENERATE_EXAM'> {
  const engine = model && config.engine === 'auto' ? 'MODEL' : 'OFFLINE';
  return ({ taskId, examId }, ctx) => {
    const { log, signal } = ctx;
    return runTask(
      { prisma, tasks },
      {
        kind: 'GENERATE_EXAM',
        taskId,
        load: async () => {
          const exam = await prisma.exam.findUnique({ where: { id: examId } });
          return exam && exam.taskId === taskId ? exam : null;
        },
        notFound: { message: 'The exam was deleted before it could be written.', error: 'exam not found' },
        cancelled: { message: 'Generation was cancelled.', log: 'exam generation stopped' },
        progressIntervalMs: config.progressIntervalMs,
        onError: async (err, { abandon, settleIfCancelled }) => {
          if (!(err instanceof GenerationFailure)) return;
          // A cancel that got in first wins: the exam then says CANCELLED, not this failure.
          if (await tasks.fail(taskId, err.code, err.message)) await abandon(err.code, err.message);
          else await settleIfCancelled();
          log.info({ taskId, examId, code: err.code, message: err.message }, 'exam generation failed');
          throw new UnrecoverableError(err.code);
        },
      },
      ctx,
      (exam, run) => generate(exam, run),
    );

    async function generate(exam: Exam, { report, flush, complete, settleIfCancelled }: TaskRun): Promise<string> {
      const writingQuestion = (made: number, target: number) =>
        made < target
          ? report(0.1 + 0.85 * (made / target), `Writing question ${made + 1} of ${target}`, made === 0)
          : report(0.95, `Checking ${target} questions`, true);

      const started = Date.now();
      const deadline = new AbortController();
      const timer = setTimeout(() => deadline.abort(new GenerationTimeout(config.timeoutMs)), config.timeoutMs);
      const both = AbortSignal.any([signal, deadline.signal]);
      try {
        await report(0.02, 'Reading the material', true);
        const { passages, total } = await loadPassages(prisma, exam, config.maxPassages);
        if (!passages.length) throw new GenerationFailure('NOT_ENOUGH_MATERIAL', 'The selected documents have no ready passages.');
        await report(0.05, `Reading ${passages.length} passages${total > passages.length ? ` spread over ${total}` : ''}`, true);
        const options = { questionCount: exam.questionCount, types: exam.types, difficulty: exam.difficulty, seed: exam.seed };

        let outcome: Outcome;
        if (engine === 'OFFLINE') {
          void writingQuestion(0, exam.questionCount);
          const { result } = await runOffline(
            { passages, ...options },
            { onProgress: writingQuestion, signal: both, timeoutMs: config.timeoutMs },
          );
          const rejected = result.rejected as Record<string, number>;
          outcome = {
            engine,
            requested: exam.questionCount,
            made: result.questions.length,
            rejected,
            questions: result.questions,
            generation: { passages: passages.length, totalPassages: total, sentences: result.sentences, candidates: result.candidates },
          };
          if (!result.questions.length) {
            const f = failure({ ...outcome, passages: passages.length, usableSentences: result.sentences.usable });
            throw new GenerationFailure(f.code, f.message);
          }
        } else {
          const course = await prisma.course.findUnique({ where: { id: exam.courseId }, select: { searchVersion: true } });
          const result = await generateWithModel(
            { passages, ...options, courseId: exam.courseId, searchVersion: course?.searchVersion ?? 0 },
            {
              model: model!,
              cache,
              batch: config.modelBatch,
              passagesPerCall: config.modelPassages,
              extraCalls: config.modelExtraCalls,
              signal: both,
              onProgress: writingQuestion,
              log,
            },
          );
          outcome = {
            engine,
            requested: exam.questionCount,
            made: result.questions.length,
            rejected: result.rejected,
            stopped: result.stopped,
            calls: result.calls,
            questions: result.questions,
            model: model!.model,
            usage: result.usage,
            generation: {
              passages: passages.length,
              totalPassages: total,
              candidates: result.candidates,
              calls: result.calls,
              repairs: result.repairs,
              cachedCalls: result.cachedCalls,
            },
          };
          if (!result.questions.length) {
            const f = failure({ ...outcome, passages: passages.length });
            throw new GenerationFailure(f.code, f.message);
          }
        }
        await flush();
        const message = completionMessage(outcome);
        both.throwIfAborted();

        // The task row is the lock, taken by its completion first: a cancel that got in first wins,
        // and two runs cannot interleave.
        const completed = await complete(async (tx) => {
          const task = await tasks.completeIn(tx, taskId, message);
          if (!task) return null;
          const { count } = await tx.exam.updateMany({
            where: { id: examId, taskId },
            data: {
              status: 'DRAFT',
              engine: outcome.engine,
              model: outcome.model ?? null,
              promptTokens: outcome.usage?.promptTokens ?? null,
              completionTokens: outcome.usage?.completionTokens ?? null,
              generation: {
                ...outcome.generation,
                requested: outcome.requested,
                made: outcome.made,
                rejected: outcome.rejected,
                note: message,
                ms: Date.now() - started,
              },
              errorCode: null,
              errorMessage: null,
            },
          });
          if (!count) return null; // deleted meanwhile (deleteExam cancels the task first)
          await tx.examQuestion.deleteMany({ where: { examId } });
          await tx.examQuestion.createMany({ data: outcome.questions.map((q, position) => ({ examId, position, ...draftColumns(q) })) });
          return task;
        }, 60_000);
        if (typeof completed === 'string') {
          const cancelledMeanwhile = completed === 'cancelled';
          if (cancelledMeanwhile) await settleIfCancelled();
          log.info({ taskId, cancelledMeanwhile }, 'exam not saved: the task was cancelled or finished by another run');
          return cancelledMeanwhile ? 'cancelled' : 'skipped';
        }
        log.info(
          {
            taskId,
            examId,
            engine: outcome.engine,
            requested: outcome.requested,
            made: outcome.made,
            rejected: outcome.rejected,
            ms: Date.now() - started,
          },
          'exam generated',
        );
        return 'completed';
      } catch (err) {
        // A cancellation goes on as it is (runTask settles it); a timeout fails the task.
        if (!(err instanceof GenerationFailure) && (err instanceof GenerationTimeout || (deadline.signal.aborted && !signal.aborted)))
          throw new GenerationFailure('TIMEOUT', `The generation took longer than ${Math.round(config.timeoutMs / 1000)} s.`);
        throw err;
      } finally {
        clearTimeout(timer);
      }
    }
  };
}
