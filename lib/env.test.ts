import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseEnv, EnvError } from './env.js';
import { subgraphEnvSchema } from './subgraph-env.js';

describe('parseEnv', () => {
  const valid = { DATABASE_URL: 'postgresql://u:p@localhost:5432/db', INTERNAL_JWT_PUBLIC_JWK: '{"kty":"OKP","crv":"Ed25519","x":"abc"}' };

  it('applies defaults and coerces numbers', () => {
    const env = parseEnv(subgraphEnvSchema(4001), valid);
    assert.equal(env.PORT, 4001);
    assert.equal(env.DB_POOL_MAX, 10);
    assert.equal(env.INTERNAL_JWT_PUBLIC_JWK.kty, 'OKP');
  });

  it('names every bad variable and its value in one error', () => {
    assert.throws(
      () => parseEnv(subgraphEnvSchema(4001), { ...valid, PORT: 'eighty', INTERNAL_JWT_PUBLIC_JWK: 'not json', DATABASE_URL: undefined }),
      (err: unknown) => {
        assert.ok(err instanceof EnvError);
        assert.match(err.message, /PORT \("eighty"\)/);
        assert.match(err.message, /INTERNAL_JWT_PUBLIC_JWK \("not json"\): must be a JSON Web Key/);
        assert.match(err.message, /DATABASE_URL \(unset\)/);
        return true;
      },
    );
  });
});
