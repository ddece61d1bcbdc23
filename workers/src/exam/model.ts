/**
 * Exam generation with a language model (lib/model's completeChat with
 * lib/exam's JSON-schema response format). Questions are asked for in
 * batches, each over its own spread of the passages (given as data, inside
 * nonce-tagged delimiters: lib/exam buildExamPrompt). Every question the model
 * writes is validated (lib/exam fromModelQuestion: zod shape, source located
 * in its passage, validateQuestion) and compared with those kept (near-
 * duplicates dropped). When an answer is not valid JSON or some questions fail,
 * one repair request sends the errors back; questions still failing are
 * dropped, and the next batch asks for the missing number, up to a bounded
 * number of calls. Never pads; MC keys rebalanced at the end (seeded).
 */
import type { ExamPassage, ExamQuestionDraft, QuestionType, Difficulty, ValidationIssue } from '@lib/exam/index.js';
import { balanceKeyPositions, buildExamPrompt, examResponseFormat, fromModelQuestion, nearDuplicate } from '@lib/exam/index.js';
import { modelExamSchema } from '@lib/exam/model.js';
import type { Logger } from '@lib/logger.js';
import type { ChatMessage, ChatModel } from '@lib/model/chat.js';
import { ModelError } from '@lib/model/errors.js';
import { examCacheKey, type ExamCache } from './cache.js';

/** Part of every cache key: change it when the prompts or the schema change meaning. */
export const EXAM_PROMPT_VERSION = 'exam-model-1';
/** Completion tokens allowed per question asked (plus a fixed margin). */
const TOKENS_PER_QUESTION = 450;

export interface ModelEngineInput {
  /** The sample of the material (see passages.ts). */
  passages: ExamPassage[];
  questionCount: number;
  types: QuestionType[];
  difficulty: Difficulty;
  seed: number;
  courseId: string;
  /** The course's search version: part of the cache key (the material changed, the answer is stale). */
  searchVersion: number;
}

export interface ModelEngineOptions {
  model: ChatModel;
  cache: ExamCache;
  /** Questions asked for per call. */
  batch: number;
  /** Passages shown per call. */
  passagesPerCall: number;
  /** Calls allowed beyond ceil(questionCount / batch) to replace dropped questions (repairs not counted). */
  extraCalls: number;
  signal: AbortSignal;
  onProgress?: (made: number, target: number) => void;
  log?: Logger;
}

export interface ModelOutcome {
  questions: ExamQuestionDraft[];
  /** Every failed check of every question the model wrote, by rule (each rule once per question). */
  rejected: Record<string, number>;
  /** Questions the model wrote that were checked (repairs included). */
  candidates: number;
  /** Requests sent to the model (cache hits not counted), repairs among them, and answers replayed from the cache. */
  calls: number;
  repairs: number;
  cachedCalls: number;
  usage: { promptTokens: number; completionTokens: number };
  /** Set when the model failed and asking stopped early. */
  stopped?: { code: string; message: string };
}

/** `size` passages spread over the whole sample, a different set for each call. */
export function passagesForCall(all: readonly ExamPassage[], call: number, size: number): ExamPassage[] {
  if (all.length <= size) return [...all];
  const stride = Math.max(1, Math.floor(all.length / size));
  const picked = new Set<number>();
  for (let j = 0; picked.size < size && j < all.length; j++) picked.add((call + j * stride) % all.length);
  return [...picked].sort((a, b) => a - b).map((i) => all[i]!);
}

type Answer = { ok: true; json: unknown; text: string } | { ok: false; error: string };

function describe(issues: ValidationIssue[]): string {
  return issues.map((i) => `${i.message} (${i.rule})`).join('; ');
}

export async function generateWithModel(input: ModelEngineInput, opts: ModelEngineOptions): Promise<ModelOutcome> {
  const { model, cache, signal, log } = opts;
  const target = input.questionCount;
  const kept: ExamQuestionDraft[] = [];
  const rejected: Record<string, number> = {};
  const out = { candidates: 0, calls: 0, repairs: 0, cachedCalls: 0, usage: { promptTokens: 0, completionTokens: 0 } };
  const bump = (rule: string) => (rejected[rule] = (rejected[rule] ?? 0) + 1);
  const maxCalls = Math.ceil(target / opts.batch) + opts.extraCalls;

  const ask = async (messages: ChatMessage[], passages: ExamPassage[], need: number): Promise<Answer> => {
    const key = examCacheKey({
      promptVersion: EXAM_PROMPT_VERSION,
      model: model.model,
      courseId: input.courseId,
      searchVersion: input.searchVersion,
      chunkIds: passages.map((p) => p.chunkId),
      params: { questionCount: need, types: input.types, difficulty: input.difficulty },
      messages,
    });
    const hit = await cache.get(key).catch(() => undefined);
    if (hit) {
      try {
        const json = JSON.parse(hit.text) as unknown;
        out.cachedCalls++;
        return { ok: true, json, text: hit.text };
      } catch {
        // a corrupt entry: ask again
      }
    }
    out.calls++;
    try {
      const r = await model.completeChat({
        messages,
        responseFormat: examResponseFormat(),
        maxTokens: TOKENS_PER_QUESTION * need + 300,
        signal,
      });
      out.usage.promptTokens += r.usage.promptTokens;
      out.usage.completionTokens += r.usage.completionTokens;
      await cache.set(key, { text: r.text, model: r.model }).catch((err: unknown) => log?.warn({ err }, 'exam cache write failed'));
      return { ok: true, json: r.json, text: r.text };
    } catch (err) {
      if (err instanceof ModelError && err.code === 'MODEL_ERROR' && err.details.reason === 'bad_output')
        return { ok: false, error: err.message };
      throw err;
    }
  };

  /** Checks an answer: the questions to keep, and the failed ones with their issues. */
  const check = (answer: Answer, passages: ExamPassage[]) => {
    const good: ExamQuestionDraft[] = [];
    const bad: { raw: unknown; issues: ValidationIssue[] }[] = [];
    if (!answer.ok) {
      bump('malformed');
      return { good, bad, malformed: answer.error };
    }
    const exam = modelExamSchema.safeParse(answer.json);
    if (!exam.success) {
      bump('malformed');
      return { good, bad, malformed: `the answer must be {"questions": [...]}: ${exam.error.issues[0]?.message ?? 'wrong shape'}` };
    }
    for (const raw of exam.data.questions) {
      out.candidates++;
      const r = fromModelQuestion(raw, passages);
      if (!r.ok) {
        for (const rule of new Set(r.issues.map((i) => i.rule))) bump(rule);
        bad.push({ raw, issues: r.issues });
      } else if ([...kept, ...good].some((k) => nearDuplicate(k, r.question))) bump('near-duplicate');
      else good.push(r.question);
    }
    return { good, bad, malformed: null as string | null };
  };

  const keep = (questions: ExamQuestionDraft[]) => {
    for (const q of questions) if (kept.length < target && !kept.some((k) => nearDuplicate(k, q))) kept.push(q);
  };

  for (let call = 0; kept.length < target && call < maxCalls; call++) {
    signal.throwIfAborted();
    const need = Math.min(opts.batch, target - kept.length);
    const passages = passagesForCall(input.passages, call, opts.passagesPerCall);
    const messages: ChatMessage[] = buildExamPrompt({ passages, questionCount: need, types: input.types, difficulty: input.difficulty });
    opts.onProgress?.(kept.length, target);
    try {
      const first = await ask(messages, passages, need);
      const checked = check(first, passages);
      keep(checked.good);
      const missing = need - checked.good.length;
      if (kept.length < target && missing > 0 && (checked.malformed || checked.bad.length)) {
        // One repair: the errors go back to the model, with its answer when there was one to show.
        out.repairs++;
        const redo = checked.malformed ? need : Math.min(missing, checked.bad.length);
        const feedback = checked.malformed
          ? `Your answer could not be used: ${checked.malformed}. Answer again with only the JSON object {"questions": [...]} holding ${redo} question(s), following every rule.`
          : [
              'These questions failed validation and were not kept:',
              ...checked.bad.map((b, i) => `- ${i + 1}. ${JSON.stringify(b.raw).slice(0, 600)}\n  Problems: ${describe(b.issues)}`),
              `Write ${redo} corrected question(s) in their place: each made only from one passage, citing that passage's n and copying its sentence verbatim, with the answer stated in that sentence. Answer with only {"questions": [...]}.`,
            ].join('\n');
        const repairMessages: ChatMessage[] = [
          ...messages,
          ...(first.ok ? [{ role: 'assistant' as const, content: first.text }] : []),
          { role: 'user', content: feedback },
        ];
        const second = check(await ask(repairMessages, passages, redo), passages);
        keep(second.good);
      }
      opts.onProgress?.(kept.length, target);
    } catch (err) {
      if (signal.aborted || (err instanceof ModelError && err.code === 'MODEL_ABORTED')) throw signal.reason ?? err;
      if (!(err instanceof ModelError)) throw err;
      log?.warn({ code: err.code, reason: err.details.reason, err: err.message }, 'exam model call failed');
      return { ...out, questions: balanceKeyPositions(kept, input.seed), rejected, stopped: { code: err.code, message: err.message } };
    }
  }
  return { ...out, questions: balanceKeyPositions(kept, input.seed), rejected };
}
