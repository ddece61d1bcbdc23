import { describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { EnvError, parseEnv } from '../env.js';
import { checkRetrievalEnv, retrievalEnv } from '../search/env.js';
import { chatEnv, checkChatEnv, checkEmbeddingsEnv, embeddingsEnv } from './config.js';

// Composed as a service composes them.
const chatSchema = z.object({ ...chatEnv }).superRefine(checkChatEnv);
const embeddingsSchema = z.object({ ...embeddingsEnv }).superRefine(checkEmbeddingsEnv);

function issues(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(EnvError);
    return (err as EnvError).message;
  }
  throw new Error('expected an EnvError');
}

describe('chat settings', () => {
  it('default to no chat model, 60 s, 2 retries, 800 tokens, temperature 0.2', () => {
    expect(parseEnv(chatSchema, {})).toEqual({ LLM_TIMEOUT_MS: 60_000, LLM_MAX_RETRIES: 2, LLM_MAX_TOKENS: 800, LLM_TEMPERATURE: 0.2 });
  });

  it('read and coerce every variable', () => {
    const env = parseEnv(chatSchema, {
      LLM_URL: 'http://localhost:11434/v1',
      LLM_MODEL: 'llama3.1:8b',
      LLM_API_KEY: 'sk-x',
      LLM_TIMEOUT_MS: '5000',
      LLM_MAX_RETRIES: '0',
      LLM_MAX_TOKENS: '1200',
      LLM_TEMPERATURE: '0',
    });
    expect(env).toEqual({
      LLM_URL: 'http://localhost:11434/v1',
      LLM_MODEL: 'llama3.1:8b',
      LLM_API_KEY: 'sk-x',
      LLM_TIMEOUT_MS: 5000,
      LLM_MAX_RETRIES: 0,
      LLM_MAX_TOKENS: 1200,
      LLM_TEMPERATURE: 0,
    });
  });

  it('refuse bad values and LLM_URL without LLM_MODEL', () => {
    const message = issues(() =>
      parseEnv(chatSchema, {
        LLM_URL: 'not a url',
        LLM_TIMEOUT_MS: '0',
        LLM_MAX_RETRIES: '-1',
        LLM_MAX_TOKENS: 'many',
        LLM_TEMPERATURE: '3',
      }),
    );
    for (const name of ['LLM_URL', 'LLM_TIMEOUT_MS', 'LLM_MAX_RETRIES', 'LLM_MAX_TOKENS', 'LLM_TEMPERATURE'])
      expect(message).toContain(name);
    expect(issues(() => parseEnv(chatSchema, { LLM_URL: 'http://localhost:8000/v1' }))).toMatch(
      /LLM_MODEL \(unset\): required with LLM_URL/,
    );
  });
});

describe('embeddings settings', () => {
  it('keep their names and rules, alone and inside the retrieval settings', () => {
    const dense = { EMBEDDINGS_URL: 'http://localhost:11434/v1', EMBEDDINGS_MODEL: 'bge-m3', EMBEDDINGS_DIMENSIONS: '1024' };
    expect(parseEnv(embeddingsSchema, dense)).toEqual({ ...dense, EMBEDDINGS_DIMENSIONS: 1024 });
    expect(issues(() => parseEnv(embeddingsSchema, { EMBEDDINGS_URL: dense.EMBEDDINGS_URL }))).toMatch(
      /EMBEDDINGS_MODEL and EMBEDDINGS_DIMENSIONS are required with EMBEDDINGS_URL/,
    );
    const retrieval = z.object(retrievalEnv).superRefine(checkRetrievalEnv);
    expect(parseEnv(retrieval, { ...dense, EMBEDDINGS_API_KEY: 'k' })).toMatchObject({
      VECTOR_STORE: 'embedded',
      EMBEDDINGS_URL: dense.EMBEDDINGS_URL,
      EMBEDDINGS_API_KEY: 'k',
      EMBEDDINGS_MODEL: 'bge-m3',
      EMBEDDINGS_DIMENSIONS: 1024,
    });
    expect(issues(() => parseEnv(retrieval, { EMBEDDINGS_URL: dense.EMBEDDINGS_URL }))).toMatch(/EMBEDDINGS_MODEL/);
  });
});
