import { SignJWT, importJWK, jwtVerify, type CryptoKey, type JWK, type KeyObject } from 'jose';
import { isRole, type Identity } from './identity.js';

/**
 * The internal assertion: a short-lived EdDSA JWT the router signs for one
 * subgraph and one user. Subgraphs hold only the public key, so neither a
 * client nor a compromised subgraph can mint one. The signer reuses a token for
 * the same user and subgraph during the first half of its life, so a busy
 * router signs about once per user per subgraph every 30 s, not per request.
 */
export const INTERNAL_ISSUER = 'ai-teacher-router';
export const INTERNAL_ALG = 'EdDSA';
const LIFETIME_S = 60;
const REUSE_MS = (LIFETIME_S / 2) * 1000;
const MAX_CACHED = 50_000;

type Key = CryptoKey | KeyObject | Uint8Array;

export const audienceFor = (subgraph: string) => `subgraph:${subgraph}`;

export interface AssertionSigner {
  sign(input: { identity: Identity; subgraph: string }): Promise<string>;
}

export async function createAssertionSigner(privateJwk: JWK): Promise<AssertionSigner> {
  const key = (await importJWK(privateJwk, INTERNAL_ALG)) as Key;
  const cache = new Map<string, { token: Promise<string>; signedAt: number }>();
  return {
    sign({ identity, subgraph }) {
      const cacheKey = `${subgraph}\u0000${identity.role}\u0000${identity.userId}`;
      const now = Date.now();
      const hit = cache.get(cacheKey);
      if (hit && now - hit.signedAt < REUSE_MS) return hit.token;
      if (cache.size >= MAX_CACHED) cache.clear();
      const token = new SignJWT({ role: identity.role })
        .setProtectedHeader({ alg: INTERNAL_ALG, typ: 'JWT' })
        .setIssuer(INTERNAL_ISSUER)
        .setAudience(audienceFor(subgraph))
        .setSubject(identity.userId)
        .setIssuedAt(Math.floor(now / 1000))
        .setExpirationTime(Math.floor(now / 1000) + LIFETIME_S)
        .sign(key);
      cache.set(cacheKey, { token, signedAt: now });
      token.catch(() => cache.delete(cacheKey));
      return token;
    },
  };
}

export interface VerifiedAssertion {
  identity: Identity;
}

export class AssertionError extends Error {
  override name = 'AssertionError';
}

export interface AssertionVerifier {
  verify(token: string | undefined): Promise<VerifiedAssertion>;
}

/** Verified assertions remembered by their exact text, at most this many (each until it expires). */
const MAX_VERIFIED = 50_000;
/** The verifier's clock tolerance, in seconds, as given to jose. */
const CLOCK_TOLERANCE_S = 5;

/**
 * Verifies assertions. The router reuses one token per user and subgraph for 30 s, so a subgraph
 * sees the same string again and again: its signature and claims are checked once, then the
 * identity is remembered by the token's exact text until the token expires (or grows older than
 * the maximum age), so a later request is checked against the clock only. Only successes are
 * remembered; a token is bound to this verifier's key, issuer and audience, so the text decides.
 */
export async function createAssertionVerifier(publicJwk: JWK, subgraph: string): Promise<AssertionVerifier> {
  const key = (await importJWK(publicJwk, INTERNAL_ALG)) as Key;
  /** Token → the verified result and the time (ms) until which it may be trusted. */
  const verified = new Map<string, { result: VerifiedAssertion; until: number }>();
  return {
    async verify(token) {
      if (!token) throw new AssertionError('missing internal assertion');
      const hit = verified.get(token);
      if (hit) {
        if (Date.now() < hit.until) return { identity: { ...hit.result.identity } };
        verified.delete(token);
      }
      let payload;
      try {
        ({ payload } = await jwtVerify(token, key, {
          algorithms: [INTERNAL_ALG],
          issuer: INTERNAL_ISSUER,
          audience: audienceFor(subgraph),
          requiredClaims: ['exp', 'iat', 'sub'],
          maxTokenAge: LIFETIME_S * 2,
          clockTolerance: CLOCK_TOLERANCE_S,
        }));
      } catch (err) {
        throw new AssertionError(`invalid internal assertion: ${(err as Error).message}`);
      }
      if (!payload.sub || !isRole(payload.role)) throw new AssertionError('internal assertion lacks sub or role');
      const result = { identity: { userId: payload.sub, role: payload.role } };
      // Trusted for as long as jose would accept it: until exp and until iat + the maximum age (with the tolerance).
      const until = (Math.min(payload.exp!, payload.iat! + LIFETIME_S * 2) + CLOCK_TOLERANCE_S) * 1000;
      if (verified.size >= MAX_VERIFIED) {
        for (const [t, v] of verified) if (v.until <= Date.now()) verified.delete(t);
        if (verified.size >= MAX_VERIFIED) verified.clear();
      }
      verified.set(token, { result, until });
      return { identity: { ...result.identity } };
    },
  };
}
