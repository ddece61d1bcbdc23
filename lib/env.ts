import { z } from 'zod';

/**
 * Parses a service's environment with a zod schema. A bad or missing value
 * throws one error that names every offending variable, so a service stops at
 * start-up with a message an operator can act on.
 */
export function parseEnv<S extends z.ZodType>(schema: S, source: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const result = schema.safeParse(source);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(environment)';
    const value = typeof issue.path[0] === 'string' ? source[issue.path[0]] : undefined;
    const shown = value === undefined ? 'unset' : JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
    return `  ${name} (${shown}): ${issue.message}`;
  });
  throw new EnvError(`Invalid environment:\n${lines.join('\n')}`);
}

export class EnvError extends Error {
  override name = 'EnvError';
}

/** Reads the process environment; the only function outside env modules allowed to. */
export function processEnv(): NodeJS.ProcessEnv {
  return process.env;
}

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');

/** Building blocks shared by every service's environment module. */
export const envParts = {
  nodeEnv: z.enum(['development', 'production', 'test']).default('development'),
  port: (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback),
  host: z.string().min(1).default('0.0.0.0'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  logFormat: z.enum(['json', 'pretty']).default('json'),
  url: z.string().url(),
  bool,
  ms: (fallback: number) => z.coerce.number().int().min(0).max(600_000).default(fallback),
  positiveInt: (fallback: number) => z.coerce.number().int().positive().default(fallback),
  jwk: z
    .string()
    .min(2)
    .transform((raw, ctx) => {
      try {
        const parsed: unknown = JSON.parse(raw);
        if (typeof parsed !== 'object' || parsed === null || !('kty' in parsed)) throw new Error('not a JWK');
        return parsed as Record<string, unknown> & { kty: string };
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be a JSON Web Key (JSON object with "kty")' });
        return z.NEVER;
      }
    }),
};
