import { describe, expect, it } from '@jest/globals';
import { parseEnv, EnvError } from './env.js';
import { subgraphEnvSchema } from './subgraph-env.js';

describe('parseEnv', () => {
  const valid = { DATABASE_URL: 'postgresql://u:p@localhost:5432/db', INTERNAL_JWT_PUBLIC_JWK: '{"kty":"OKP","crv":"Ed25519","x":"abc"}' };

  it('applies defaults and coerces numbers', () => {
    const env = parseEnv(subgraphEnvSchema(4001), valid);
    expect(env.PORT).toBe(4001);
    expect(env.DB_POOL_MAX).toBe(10);
    expect(env.INTERNAL_JWT_PUBLIC_JWK.kty).toBe('OKP');
  });

  it('names every bad variable and its value in one error', () => {
    let caught: unknown;
    try {
      parseEnv(subgraphEnvSchema(4001), { ...valid, PORT: 'eighty', INTERNAL_JWT_PUBLIC_JWK: 'not json', DATABASE_URL: undefined });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(EnvError);
    const message = (caught as EnvError).message;
    expect(message).toMatch(/PORT \("eighty"\)/);
    expect(message).toMatch(/INTERNAL_JWT_PUBLIC_JWK \("not json"\): must be a JSON Web Key/);
    expect(message).toMatch(/DATABASE_URL \(unset\)/);
  });
});
