/**
 * Model settings, as zod shapes a service spreads into its environment schema
 * (with the matching check in its superRefine), the way lib/search/env.ts
 * composes the embeddings settings into the retrieval ones:
 *
 *   z.object({ ...other, ...chatEnv }).superRefine((env, ctx) => checkChatEnv(env, ctx))
 */
import { z } from 'zod';

/** Embeddings: an OpenAI-compatible `/embeddings` endpoint. Unset URL: no dense vectors. */
export const embeddingsEnv = {
  /** An OpenAI-compatible API (OpenAI, Ollama, vLLM, TEI), e.g. http://localhost:11434/v1. Unset: lexical search alone. */
  EMBEDDINGS_URL: z.string().url().optional(),
  EMBEDDINGS_API_KEY: z.string().optional(),
  EMBEDDINGS_MODEL: z.string().min(1).optional(),
  EMBEDDINGS_DIMENSIONS: z.coerce.number().int().positive().optional(),
};

export interface EmbeddingsEnv {
  EMBEDDINGS_URL?: string | undefined;
  EMBEDDINGS_API_KEY?: string | undefined;
  EMBEDDINGS_MODEL?: string | undefined;
  EMBEDDINGS_DIMENSIONS?: number | undefined;
}

/** Cross-field rules, for a schema's superRefine. */
export function checkEmbeddingsEnv(env: EmbeddingsEnv, ctx: z.RefinementCtx): void {
  if (env.EMBEDDINGS_URL && (!env.EMBEDDINGS_MODEL || !env.EMBEDDINGS_DIMENSIONS)) {
    ctx.addIssue({
      code: 'custom',
      path: ['EMBEDDINGS_MODEL'],
      message: 'EMBEDDINGS_MODEL and EMBEDDINGS_DIMENSIONS are required with EMBEDDINGS_URL',
    });
  }
}

/** Chat completions: an OpenAI-compatible `/chat/completions` endpoint. Unset URL: no chat model. */
export const chatEnv = {
  /** An OpenAI-compatible API root, e.g. https://api.openai.com/v1 or http://localhost:11434/v1 (Ollama), http://vllm:8000/v1. */
  LLM_URL: z.string().url().optional(),
  LLM_MODEL: z.string().min(1).optional(),
  /** Unset for servers that want none (Ollama, vLLM without --api-key): no Authorization header is sent. */
  LLM_API_KEY: z.string().optional(),
  /** Time to the response headers (the first token, when streaming) and, after them, the longest silence between two chunks. */
  LLM_TIMEOUT_MS: z.coerce.number().int().min(1).max(600_000).default(60_000),
  /** Retries after the first attempt, on connection errors, timeouts, 408, 409, 429 and 5xx; never once an answer has started. */
  LLM_MAX_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
  LLM_MAX_TOKENS: z.coerce.number().int().positive().default(800),
  LLM_TEMPERATURE: z.coerce.number().min(0).max(2).default(0.2),
};

export interface ChatEnv {
  LLM_URL?: string | undefined;
  LLM_MODEL?: string | undefined;
  LLM_API_KEY?: string | undefined;
  LLM_TIMEOUT_MS: number;
  LLM_MAX_RETRIES: number;
  LLM_MAX_TOKENS: number;
  LLM_TEMPERATURE: number;
}

/** Cross-field rules, for a schema's superRefine. */
export function checkChatEnv(env: ChatEnv, ctx: z.RefinementCtx): void {
  if (env.LLM_URL && !env.LLM_MODEL) {
    ctx.addIssue({ code: 'custom', path: ['LLM_MODEL'], message: 'required with LLM_URL' });
  }
}
