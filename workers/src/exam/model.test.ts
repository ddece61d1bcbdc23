import { describe, expect, it } from '@jest/globals';
import { COURSE_PASSAGES } from '@lib/exam/fixtures/course.js';
import type { ChatMessage, ChatModel, ChatRequest, ChatResult } from '@lib/model/chat.js';
import { ModelError } from '@lib/model/errors.js';
import { carefulModel } from '../../../tests/support/exam.js';
import type { CachedExamAnswer, ExamCache } from './cache.js';
import { generateWithModel, passagesForCall, type ModelEngineInput } from './model.js';

type Reply = string | Error;

/** A ChatModel whose answers a script writes; it records every request. */
function scriptedModel(script: (messages: ChatMessage[], call: number) => Reply) {
  const requests: ChatRequest[] = [];
  const model: ChatModel = {
    model: 'scripted',
    streamChat: () => {
      throw new Error('not used');
    },
    async completeChat(request): Promise<ChatResult> {
      requests.push(request);
      const reply = script(request.messages, requests.length);
      if (reply instanceof Error) throw reply;
      let json: unknown;
      try {
        json = JSON.parse(reply);
      } catch {
        throw new ModelError('MODEL_ERROR', 'chat model "scripted": the answer is not valid JSON', {
          kind: 'chat',
          url: 'http://model',
          model: 'scripted',
          reason: 'bad_output',
        });
      }
      return {
        text: reply,
        json,
        usage: { promptTokens: 100, completionTokens: 50, estimated: false },
        finishReason: 'stop',
        model: 'scripted',
      };
    },
  };
  return { model, requests };
}

function memoryCache(): ExamCache & { entries: Map<string, CachedExamAnswer> } {
  const entries = new Map<string, CachedExamAnswer>();
  return { entries, get: async (k) => entries.get(k), set: async (k, v) => void entries.set(k, v) };
}

const input = (over: Partial<ModelEngineInput> = {}): ModelEngineInput => ({
  passages: COURSE_PASSAGES,
  questionCount: 5,
  types: ['MULTIPLE_CHOICE', 'TRUE_FALSE', 'FILL_IN_THE_BLANK', 'SHORT_ANSWER'],
  difficulty: 'MEDIUM',
  seed: 1,
  courseId: 'course',
  searchVersion: 3,
  ...over,
});

const run = (model: ChatModel, over: Partial<ModelEngineInput> = {}, cache: ExamCache = memoryCache()) =>
  generateWithModel(input(over), { model, cache, batch: 3, passagesPerCall: 6, extraCalls: 2, signal: new AbortController().signal });

const unavailable = () =>
  new ModelError('MODEL_UNAVAILABLE', 'down', { kind: 'chat', url: 'http://model', model: 'scripted', reason: 'server_error' });

describe('generateWithModel', () => {
  it('asks in batches, keeps valid questions, and spreads the MC keys', async () => {
    const careful = carefulModel(new Set());
    const { model, requests } = scriptedModel((messages) => careful({ messages }));
    const out = await run(model, { questionCount: 8, types: ['MULTIPLE_CHOICE'] });
    expect(out.questions).toHaveLength(8);
    expect(out).toMatchObject({ calls: 3, repairs: 0, cachedCalls: 0, rejected: {} });
    expect(out.usage).toEqual({ promptTokens: 300, completionTokens: 150 });
    expect(requests.map((r) => /Write (\d+) questions/.exec(r.messages[1]!.content)![1])).toEqual(['3', '3', '2']);
    expect(requests.every((r) => r.responseFormat?.type === 'json_schema')).toBe(true);
    // The model always put the key first; kept questions have it spread over A-D.
    expect(new Set(out.questions.map((q) => q.answerIndex)).size).toBeGreaterThan(1);
    for (const q of out.questions) expect(q.options![q.answerIndex!]).toMatch(/^1\d{3}$/);
  });

  it('repairs an answer that is not JSON once, with the error', async () => {
    const careful = carefulModel(new Set());
    const { model, requests } = scriptedModel((messages, call) => (call === 1 ? 'Here you are: {"questions": [' : careful({ messages })));
    const out = await run(model, { questionCount: 3 });
    expect(out.questions).toHaveLength(3);
    expect(out).toMatchObject({ calls: 2, repairs: 1, rejected: { malformed: 1 } });
    expect(requests[1]!.messages.map((m) => m.role)).toEqual(['system', 'user', 'user']);
    expect(requests[1]!.messages[2]!.content).toMatch(/^Your answer could not be used: .*not valid JSON.*holding 3 question/);
  });

  it('sends failed questions back with their issues; still failing, they are dropped and the missing number asked again', async () => {
    const careful = carefulModel(new Set());
    const { model, requests } = scriptedModel((messages, call) => careful({ messages }, { invalid: call <= 2 ? 1 : 0 }));
    const out = await run(model, { questionCount: 3 });
    expect(out.questions).toHaveLength(3);
    expect(out).toMatchObject({ calls: 3, repairs: 1, rejected: { source: 2 }, candidates: 5 });
    const repair = requests[1]!.messages;
    expect(repair.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
    expect(JSON.parse(repair[2]!.content)).toHaveProperty('questions');
    expect(repair[3]!.content).toMatch(/the sentence is not in passage \d+ \(source\)/);
    expect(requests[2]!.messages).toHaveLength(2);
    expect(requests[2]!.messages[1]!.content).toMatch(/Write 1 questions/);
  });

  it('gives up after a bounded number of calls, never padding', async () => {
    const careful = carefulModel(new Set());
    const { model, requests } = scriptedModel((messages) => careful({ messages }, { invalid: 99 }));
    const out = await run(model, { questionCount: 4 });
    expect(out.questions).toEqual([]);
    // ceil(4 / 3) + 2 = 4 calls, each with one repair.
    expect(requests).toHaveLength(8);
    expect(out).toMatchObject({ calls: 8, repairs: 4 });
  });

  it('drops a question about the same fact as one already kept', async () => {
    // The same sentences every time: the second batch only repeats the first.
    const { model } = scriptedModel((messages) => carefulModel(new Set())({ messages }));
    const out = await run(model, { questionCount: 4, types: ['FILL_IN_THE_BLANK'], passages: COURSE_PASSAGES.slice(0, 2) });
    expect(out.rejected['near-duplicate']).toBeGreaterThan(0);
    const sentences = out.questions.map((q) => q.source.sentence);
    expect(new Set(sentences).size).toBe(sentences.length);
  });

  it('replays answers from the cache: same passages, model and parameters make no call', async () => {
    const cache = memoryCache();
    const first = scriptedModel((messages) => carefulModel(new Set())({ messages }));
    const a = await run(first.model, { questionCount: 3 }, cache);
    expect(cache.entries.size).toBe(1);
    const second = scriptedModel(() => {
      throw new Error('the model must not be called');
    });
    const b = await run(second.model, { questionCount: 3 }, cache);
    expect(b).toMatchObject({ calls: 0, cachedCalls: 1 });
    expect(b.questions).toEqual(a.questions);
    // Another search version (the material changed) is another key.
    const third = scriptedModel((messages) => carefulModel(new Set())({ messages }));
    expect((await run(third.model, { questionCount: 3, searchVersion: 4 }, cache)).calls).toBe(1);
  });

  it('stops when the model becomes unavailable, keeping what it made', async () => {
    const careful = carefulModel(new Set());
    const { model } = scriptedModel((messages, call) => (call === 1 ? careful({ messages }) : unavailable()));
    const out = await run(model, { questionCount: 6 });
    expect(out.questions).toHaveLength(3);
    expect(out.stopped).toEqual({ code: 'MODEL_UNAVAILABLE', message: 'down' });
  });

  it('throws when cancelled', async () => {
    const controller = new AbortController();
    controller.abort('CANCELLED');
    const { model } = scriptedModel(() => '{"questions": []}');
    await expect(
      generateWithModel(input(), { model, cache: memoryCache(), batch: 3, passagesPerCall: 6, extraCalls: 2, signal: controller.signal }),
    ).rejects.toBe('CANCELLED');
  });
});

describe('passagesForCall', () => {
  it('gives each call its own spread of the passages, all of them when there are few', () => {
    const ids = (call: number) => passagesForCall(COURSE_PASSAGES, call, 5).map((p) => p.chunkId);
    expect(ids(0)).toHaveLength(5);
    expect(ids(0)).not.toEqual(ids(1));
    // Spread over the material: the first call reaches history, physics and biology.
    expect(new Set(ids(0).map((id) => id[0]))).toEqual(new Set(['h', 'p', 'b']));
    const seen = new Set([0, 1, 2, 3].flatMap(ids));
    expect(seen.size).toBe(COURSE_PASSAGES.length - 1);
    expect(passagesForCall(COURSE_PASSAGES.slice(0, 3), 4, 5).map((p) => p.chunkId)).toEqual(['h1', 'h2', 'h3']);
  });
});
