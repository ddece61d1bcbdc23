import { beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import * as jose from 'jose';
import { SignJWT, UnsecuredJWT, base64url, importJWK, type JWK } from 'jose';
import { generateJwkPair, type KeyPairJwk } from '@lib/keys.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Authenticator } from './auth.js';

// Every signature verification the authenticator makes goes through this spy
// (which calls the real jwtVerify), so a test can tell a cached answer from a new verification.
const jwtVerify = jest.fn(jose.jwtVerify);
jest.unstable_mockModule('jose', () => ({ ...jose, jwtVerify }));
const { AuthError, KeySourceError, createAuthenticator, roleFrom } = await import('./auth.js');

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
      expect(err).toBeInstanceOf(AuthError);
      return (err as InstanceType<typeof AuthError>).reason;
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

  beforeAll(async () => {
    good = await generateJwkPair('RS256');
    other = await generateJwkPair('RS256');
    auth = authWith();
  });

  it('accepts a valid token and reads the user id and role', async () => {
    const identity = await auth.authenticate(`Bearer ${await sign({ sub: 'alice', role: 'teacher' })}`);
    const { expiresAt, ...rest } = identity;
    expect(rest).toStrictEqual({ userId: 'alice', role: 'TEACHER' });
    // The token’s exp, for closing sockets on time.
    expect(expiresAt).toBeGreaterThan(Date.now() / 1000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() / 1000 + 301);
  });

  it('rejects a missing header and a header that is not a bearer JWT', async () => {
    expect(await reason(undefined)).toBe('MISSING_TOKEN');
    expect(await reason('Basic YWxpY2U6cHc=')).toBe('MALFORMED_TOKEN');
    expect(await reason('Bearer not-a-jwt')).toBe('MALFORMED_TOKEN');
    expect(await reason(`Bearer ${'a'.repeat(9000)}.b.c`)).toBe('MALFORMED_TOKEN');
  });

  it('rejects a token signed by another key under the trusted kid (forged)', async () => {
    expect(await reason(`Bearer ${await sign({ sub: 'alice', role: 'ADMIN' }, { key: other.privateJwk })}`)).toBe('BAD_SIGNATURE');
  });

  it('rejects a token whose payload was altered after signing', async () => {
    const token = await sign({ sub: 'alice', role: 'STUDENT' });
    const [h, , s] = token.split('.');
    const forged = base64url.encode(
      JSON.stringify({ sub: 'alice', role: 'ADMIN', iss: issuer, aud: audience, exp: Math.floor(Date.now() / 1000) + 600 }),
    );
    expect(await reason(`Bearer ${h}.${forged}.${s}`)).toBe('BAD_SIGNATURE');
  });

  it('rejects a token signed with an unknown kid', async () => {
    expect(await reason(`Bearer ${await sign({ sub: 'alice', role: 'STUDENT' }, { key: other.privateJwk, kid: 'nope' })}`)).toBe(
      'UNKNOWN_KEY',
    );
  });

  it('rejects an expired token, beyond the clock tolerance', async () => {
    expect(await reason(`Bearer ${await sign({ sub: 'alice', role: 'STUDENT' }, { exp: Math.floor(Date.now() / 1000) - 30 })}`)).toBe(
      'TOKEN_EXPIRED',
    );
  });

  it('accepts a token expired by less than the clock tolerance', async () => {
    const identity = await auth.authenticate(
      `Bearer ${await sign({ sub: 'alice', role: 'STUDENT' }, { exp: Math.floor(Date.now() / 1000) - 2 })}`,
    );
    expect(identity.userId).toBe('alice');
  });

  it('rejects a token issued in the future, beyond the clock tolerance, and says why', async () => {
    const now = Math.floor(Date.now() / 1000);
    const future = await new SignJWT({ sub: 'alice', role: 'STUDENT' })
      .setProtectedHeader({ alg: 'RS256', kid: good.publicJwk.kid! })
      .setIssuedAt(now + 600)
      .setIssuer(issuer)
      .setAudience(audience)
      .setExpirationTime(now + 900)
      .sign(await importJWK(good.privateJwk, 'RS256'));
    const refused = auth.authenticate(`Bearer ${future}`);
    await expect(refused).rejects.toThrow(AuthError);
    await expect(refused).rejects.toMatchObject({ reason: 'CLAIM_INVALID', message: expect.stringMatching(/"iat".*future/) });
    // Refused every time: a refusal is never remembered as a verified token.
    expect(await reason(`Bearer ${future}`)).toBe('CLAIM_INVALID');
  });

  it('accepts a token issued less than the clock tolerance in the future', async () => {
    const now = Math.floor(Date.now() / 1000);
    const skewed = await new SignJWT({ sub: 'alice', role: 'STUDENT' })
      .setProtectedHeader({ alg: 'RS256', kid: good.publicJwk.kid! })
      .setIssuedAt(now + 2)
      .setIssuer(issuer)
      .setAudience(audience)
      .setExpirationTime(now + 300)
      .sign(await importJWK(good.privateJwk, 'RS256'));
    expect((await auth.authenticate(`Bearer ${skewed}`)).userId).toBe('alice');
  });

  it('rejects alg "none"', async () => {
    const unsigned = new UnsecuredJWT({ sub: 'alice', role: 'ADMIN' })
      .setIssuer(issuer)
      .setAudience(audience)
      .setExpirationTime('5m')
      .encode();
    expect(await reason(`Bearer ${unsigned}`)).toBe('ALGORITHM_NOT_ALLOWED');
  });

  it('rejects HS256 signed with the public key as secret (algorithm confusion)', async () => {
    const secret = new TextEncoder().encode(JSON.stringify(good.publicJwk));
    const token = await new SignJWT({ sub: 'alice', role: 'ADMIN' })
      .setProtectedHeader({ alg: 'HS256', kid: good.publicJwk.kid! })
      .setIssuer(issuer)
      .setAudience(audience)
      .setExpirationTime('5m')
      .sign(secret);
    expect(await reason(`Bearer ${token}`)).toBe('ALGORITHM_NOT_ALLOWED');
  });

  it('rejects a wrong issuer and a wrong audience', async () => {
    expect(await reason(`Bearer ${await sign({ sub: 'alice', role: 'STUDENT' }, { iss: 'https://evil.example/' })}`)).toBe('CLAIM_INVALID');
    expect(await reason(`Bearer ${await sign({ sub: 'alice', role: 'STUDENT' }, { aud: 'another-app' })}`)).toBe('CLAIM_INVALID');
  });

  it('rejects tokens missing exp, sub, iss or aud', async () => {
    expect(await reason(`Bearer ${await sign({ sub: 'alice', role: 'STUDENT' }, { exp: null })}`)).toBe('CLAIM_INVALID');
    expect(await reason(`Bearer ${await sign({ role: 'STUDENT' })}`)).toBe('CLAIM_INVALID');
    expect(await reason(`Bearer ${await sign({ sub: 'alice', role: 'STUDENT' }, { iss: '' })}`)).toBe('CLAIM_INVALID');
    expect(await reason(`Bearer ${await sign({ sub: 'alice', role: 'STUDENT' }, { aud: '' })}`)).toBe('CLAIM_INVALID');
  });

  it('rejects a token without a known role unless a default role is configured', async () => {
    expect(await reason(`Bearer ${await sign({ sub: 'alice', role: 'SUPERUSER' })}`)).toBe('NO_ROLE');
    const lenient = authWith({ defaultRole: 'STUDENT' });
    expect((await lenient.authenticate(`Bearer ${await sign({ sub: 'alice' })}`)).role).toBe('STUDENT');
  });

  it('reads the role from a configurable nested claim and keeps the highest', async () => {
    const keycloak = authWith({ roleClaim: 'realm_access.roles' });
    const identity = await keycloak.authenticate(
      `Bearer ${await sign({ sub: 'bob', realm_access: { roles: ['offline_access', 'student', 'teacher'] } })}`,
    );
    expect(identity.role).toBe('TEACHER');
    expect(roleFrom(['admin', 'student'])).toBe('ADMIN');
    expect(roleFrom(42)).toBe(undefined);
  });

  it('remembers a verified token only until it expires', async () => {
    const strict = authWith({ clockToleranceS: 0 });
    // At least one whole second of life (exp is in whole seconds), so the first two calls cannot see it expired.
    const exp = Math.floor(Date.now() / 1000) + 2;
    const header = `Bearer ${await sign({ sub: 'carol', role: 'STUDENT' }, { exp })}`;
    jwtVerify.mockClear();
    expect((await strict.authenticate(header)).userId).toBe('carol');
    expect(jwtVerify).toHaveBeenCalledTimes(1);
    // Served again, from the cache: no second verification.
    expect((await strict.authenticate(header)).userId).toBe('carol');
    expect(jwtVerify).toHaveBeenCalledTimes(1);
    await new Promise((r) => setTimeout(r, exp * 1000 + 100 - Date.now()));
    const expired = strict.authenticate(header);
    await expect(expired).rejects.toThrow(AuthError);
    await expect(expired).rejects.toMatchObject({ reason: 'TOKEN_EXPIRED' });
    // Once expired, the token is verified again (and refused), not served from the cache.
    expect(jwtVerify).toHaveBeenCalledTimes(2);
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
      expect((await oidc.authenticate(`Bearer ${await sign({ sub: 'dana', role: 'TEACHER' })}`)).userId).toBe('dana');
    } finally {
      // Drop the keep-alive connection too, so nothing is left open when the test ends.
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    const down = authWith({ jwks: undefined, jwksUrl: `http://127.0.0.1:${port}/certs` });
    await expect(down.authenticate(`Bearer ${await sign({ sub: 'erin', role: 'TEACHER' })}`)).rejects.toThrow(KeySourceError);
  });

  it('rejects a sub that is not a safe user id', async () => {
    expect(await reason(`Bearer ${await sign({ sub: 'a b; drop table', role: 'STUDENT' })}`)).toBe('CLAIM_INVALID');
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
      for (const header of candidates) expect(await reason(header)).not.toBe('ACCEPTED');
    }
  });
});
