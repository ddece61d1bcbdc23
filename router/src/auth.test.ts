import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it, before } from 'node:test';
import { SignJWT, UnsecuredJWT, base64url, importJWK, type JWK } from 'jose';
import { generateJwkPair, type KeyPairJwk } from '@lib/keys.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AuthError, KeySourceError, createAuthenticator, roleFrom, type Authenticator } from './auth.js';

const issuer = 'https://idp.example/';
const audience = 'ai-teacher';

describe('authenticator', () => {
  let good: KeyPairJwk;
  let other: KeyPairJwk;
  let auth: Authenticator;

  const sign = async (
    claims: Record<string, unknown>,
    opts: { key?: JWK; kid?: string; exp?: number | string | null; iss?: string; aud?: string; alg?: string } = {},
  ) => {
    const key = opts.key ?? good.privateJwk;
    const alg = opts.alg ?? 'RS256';
    const jwt = new SignJWT(claims).setProtectedHeader({ alg, kid: opts.kid ?? good.publicJwk.kid! }).setIssuedAt();
    if (opts.iss !== '') jwt.setIssuer(opts.iss ?? issuer);
    if (opts.aud !== '') jwt.setAudience(opts.aud ?? audience);
    if (opts.exp !== null) jwt.setExpirationTime(opts.exp ?? '5m');
    return jwt.sign(await importJWK(key, alg));
  };
  const reason = async (header: string | undefined) => {
    try {
      await auth.authenticate(header);
      return 'ACCEPTED';
    } catch (err) {
      assert.ok(err instanceof AuthError, `expected AuthError, got ${(err as Error).name}: ${(err as Error).message}`);
      return err.reason;
    }
  };

  /** An authenticator trusting `good`'s key set, with the overrides given. */
  const authWith = (overrides: Partial<Parameters<typeof createAuthenticator>[0]> = {}) =>
    createAuthenticator({
      issuer,
      audience,
      algorithms: ['RS256'],
      jwks: JSON.stringify({ keys: [good.publicJwk] }),
      roleClaim: 'role',
      clockToleranceS: 5,
      ...overrides,
    });

  before(async () => {
    good = await generateJwkPair('RS256');
    other = await generateJwkPair('RS256');
    auth = authWith();
  });

  it('accepts a valid token and reads the user id and role', async () => {
    const identity = await auth.authenticate(`Bearer ${await sign({ sub: 'alice', role: 'teacher' })}`);
    const { expiresAt, ...rest } = identity;
    assert.deepEqual(rest, { userId: 'alice', role: 'TEACHER' });
    assert.ok(expiresAt > Date.now() / 1000 && expiresAt <= Date.now() / 1000 + 301, 'the token’s exp, for closing sockets on time');
  });

  it('rejects a missing header and a header that is not a bearer JWT', async () => {
    assert.equal(await reason(undefined), 'MISSING_TOKEN');
    assert.equal(await reason('Basic YWxpY2U6cHc='), 'MALFORMED_TOKEN');
    assert.equal(await reason('Bearer not-a-jwt'), 'MALFORMED_TOKEN');
    assert.equal(await reason(`Bearer ${'a'.repeat(9000)}.b.c`), 'MALFORMED_TOKEN');
  });

  it('rejects a token signed by another key under the trusted kid (forged)', async () => {
    assert.equal(await reason(`Bearer ${await sign({ sub: 'alice', role: 'ADMIN' }, { key: other.privateJwk })}`), 'BAD_SIGNATURE');
  });

  it('rejects a token whose payload was altered after signing', async () => {
    const token = await sign({ sub: 'alice', role: 'STUDENT' });
    const [h, , s] = token.split('.');
    const forged = base64url.encode(
      JSON.stringify({ sub: 'alice', role: 'ADMIN', iss: issuer, aud: audience, exp: Math.floor(Date.now() / 1000) + 600 }),
    );
    assert.equal(await reason(`Bearer ${h}.${forged}.${s}`), 'BAD_SIGNATURE');
  });

  it('rejects a token signed with an unknown kid', async () => {
    assert.equal(
      await reason(`Bearer ${await sign({ sub: 'alice', role: 'STUDENT' }, { key: other.privateJwk, kid: 'nope' })}`),
      'UNKNOWN_KEY',
    );
  });

  it('rejects an expired token, beyond the clock tolerance', async () => {
    assert.equal(
      await reason(`Bearer ${await sign({ sub: 'alice', role: 'STUDENT' }, { exp: Math.floor(Date.now() / 1000) - 30 })}`),
      'TOKEN_EXPIRED',
    );
  });

  it('accepts a token expired by less than the clock tolerance', async () => {
    const identity = await auth.authenticate(
      `Bearer ${await sign({ sub: 'alice', role: 'STUDENT' }, { exp: Math.floor(Date.now() / 1000) - 2 })}`,
    );
    assert.equal(identity.userId, 'alice');
  });

  it('rejects alg "none"', async () => {
    const unsigned = new UnsecuredJWT({ sub: 'alice', role: 'ADMIN' })
      .setIssuer(issuer)
      .setAudience(audience)
      .setExpirationTime('5m')
      .encode();
    assert.equal(await reason(`Bearer ${unsigned}`), 'ALGORITHM_NOT_ALLOWED');
  });

  it('rejects HS256 signed with the public key as secret (algorithm confusion)', async () => {
    const secret = new TextEncoder().encode(JSON.stringify(good.publicJwk));
    const token = await new SignJWT({ sub: 'alice', role: 'ADMIN' })
      .setProtectedHeader({ alg: 'HS256', kid: good.publicJwk.kid! })
      .setIssuer(issuer)
      .setAudience(audience)
      .setExpirationTime('5m')
      .sign(secret);
    assert.equal(await reason(`Bearer ${token}`), 'ALGORITHM_NOT_ALLOWED');
  });

  it('rejects a wrong issuer and a wrong audience', async () => {
    assert.equal(
      await reason(`Bearer ${await sign({ sub: 'alice', role: 'STUDENT' }, { iss: 'https://evil.example/' })}`),
      'CLAIM_INVALID',
    );
    assert.equal(await reason(`Bearer ${await sign({ sub: 'alice', role: 'STUDENT' }, { aud: 'another-app' })}`), 'CLAIM_INVALID');
  });

  it('rejects tokens missing exp, sub, iss or aud', async () => {
    assert.equal(await reason(`Bearer ${await sign({ sub: 'alice', role: 'STUDENT' }, { exp: null })}`), 'CLAIM_INVALID');
    assert.equal(await reason(`Bearer ${await sign({ role: 'STUDENT' })}`), 'CLAIM_INVALID');
    assert.equal(await reason(`Bearer ${await sign({ sub: 'alice', role: 'STUDENT' }, { iss: '' })}`), 'CLAIM_INVALID');
    assert.equal(await reason(`Bearer ${await sign({ sub: 'alice', role: 'STUDENT' }, { aud: '' })}`), 'CLAIM_INVALID');
  });

  it('rejects a token without a known role unless a default role is configured', async () => {
    assert.equal(await reason(`Bearer ${await sign({ sub: 'alice', role: 'SUPERUSER' })}`), 'NO_ROLE');
    const lenient = authWith({ defaultRole: 'STUDENT' });
    assert.equal((await lenient.authenticate(`Bearer ${await sign({ sub: 'alice' })}`)).role, 'STUDENT');
  });

  it('reads the role from a configurable nested claim and keeps the highest', async () => {
    const keycloak = authWith({ roleClaim: 'realm_access.roles' });
    const identity = await keycloak.authenticate(
      `Bearer ${await sign({ sub: 'bob', realm_access: { roles: ['offline_access', 'student', 'teacher'] } })}`,
    );
    assert.equal(identity.role, 'TEACHER');
    assert.equal(roleFrom(['admin', 'student']), 'ADMIN');
    assert.equal(roleFrom(42), undefined);
  });

  it('remembers a verified token only until it expires', async () => {
    const strict = authWith({ clockToleranceS: 0 });
    const header = `Bearer ${await sign({ sub: 'carol', role: 'STUDENT' }, { exp: Math.floor(Date.now() / 1000) + 1 })}`;
    assert.equal((await strict.authenticate(header)).userId, 'carol');
    assert.equal((await strict.authenticate(header)).userId, 'carol', 'served again, from the cache');
    await new Promise((r) => setTimeout(r, 2100));
    await assert.rejects(strict.authenticate(header), (err: unknown) => err instanceof AuthError && err.reason === 'TOKEN_EXPIRED');
  });

  it('fetches keys from a JWKS URL (any OIDC provider) and says so when it is unreachable', async () => {
    const server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [good.publicJwk] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    try {
      const oidc = authWith({ jwks: undefined, jwksUrl: `http://127.0.0.1:${port}/certs` });
      assert.equal((await oidc.authenticate(`Bearer ${await sign({ sub: 'dana', role: 'TEACHER' })}`)).userId, 'dana');
    } finally {
      server.close();
    }
    const down = authWith({ jwks: undefined, jwksUrl: `http://127.0.0.1:${port}/certs` });
    await assert.rejects(
      down.authenticate(`Bearer ${await sign({ sub: 'erin', role: 'TEACHER' })}`),
      (err: unknown) => err instanceof KeySourceError,
    );
  });

  it('rejects a sub that is not a safe user id', async () => {
    assert.equal(await reason(`Bearer ${await sign({ sub: 'a b; drop table', role: 'STUDENT' })}`), 'CLAIM_INVALID');
  });

  it('answers every random or mangled token with an AuthError, never anything else', async () => {
    const valid = await sign({ sub: 'alice', role: 'STUDENT' });
    for (let i = 0; i < 300; i++) {
      const bytes = randomBytes(1 + (i % 60));
      const parts = valid.split('.');
      const candidates = [
        `Bearer ${base64url.encode(bytes)}.${base64url.encode(randomBytes(20))}.${base64url.encode(randomBytes(30))}`,
        `Bearer ${base64url.encode(JSON.stringify({ alg: ['RS512', 'none', 'HS256', 'ES256', 42, null][i % 6], kid: good.publicJwk.kid }))}.${parts[1]}.${parts[2]}`,
        `Bearer ${parts[0]}.${base64url.encode(bytes)}.${parts[2]}`,
        `Bearer ${valid.slice(0, i % valid.length)}`,
      ];
      for (const header of candidates) assert.notEqual(await reason(header), 'ACCEPTED');
    }
  });
});
