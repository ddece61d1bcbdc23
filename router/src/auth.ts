import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { isRole, type Identity, type Role } from '@lib/identity.js';

export interface AuthConfig {
  issuer: string;
  audience: string;
  algorithms: string[];
  jwksUrl?: string | undefined;
  jwks?: string | undefined;
  roleClaim: string;
  defaultRole?: Role | undefined;
  clockToleranceS: number;
}

/** Why a token was refused; sent as `extensions.reason` beside the code UNAUTHENTICATED. */
export type AuthFailure =
  | 'MISSING_TOKEN'
  | 'MALFORMED_TOKEN'
  | 'TOKEN_EXPIRED'
  | 'BAD_SIGNATURE'
  | 'ALGORITHM_NOT_ALLOWED'
  | 'UNKNOWN_KEY'
  | 'CLAIM_INVALID'
  | 'NO_ROLE';

export class AuthError extends Error {
  override name = 'AuthError';
  constructor(
    readonly reason: AuthFailure,
    message: string,
  ) {
    super(message);
  }
}

/** The key source is unreachable (OIDC provider down): not the client's fault. */
export class KeySourceError extends Error {
  override name = 'KeySourceError';
}

export interface Authenticator {
  authenticate(authorization: string | undefined): Promise<AuthenticatedIdentity>;
}

/** The identity and when its token expires (seconds since the epoch): open sockets close then. */
export interface AuthenticatedIdentity extends Identity {
  expiresAt: number;
}

const MAX_TOKEN_LENGTH = 8192;
const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)$/;
const USER_ID = /^[\w.@:|-]{1,128}$/;
const ROLE_RANK: Record<Role, number> = { STUDENT: 0, TEACHER: 1, ADMIN: 2 };

/** Verified tokens remembered (by hash) until they expire, at most this many and this long. */
const CACHE_ENTRIES = 10_000;
const CACHE_MAX_MS = 60_000;

export function createAuthenticator(config: AuthConfig): Authenticator {
  const keys: JWTVerifyGetKey = config.jwksUrl
    ? createRemoteJWKSet(new URL(config.jwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 600_000 })
    : createLocalJWKSet(JSON.parse(config.jwks ?? '{"keys":[]}'));
  // A client sends the same token on every request: verify its signature once,
  // then trust it until min(exp, 60 s). Only successes are cached.
  const verified = new LRUCache<string, { identity: AuthenticatedIdentity; exp: number }>({ max: CACHE_ENTRIES, ttl: CACHE_MAX_MS });

  return {
    async authenticate(authorization) {
      if (!authorization) throw new AuthError('MISSING_TOKEN', 'Missing bearer token in the Authorization header');
      if (authorization.length > MAX_TOKEN_LENGTH) throw new AuthError('MALFORMED_TOKEN', 'Token too long');
      const match = BEARER.exec(authorization.trim());
      if (!match?.[1]) throw new AuthError('MALFORMED_TOKEN', 'Expected "Authorization: Bearer <JWT>"');
      const cacheKey = createHash('sha256').update(match[1]).digest('base64url');
      const cached = verified.get(cacheKey);
      if (cached) {
        if (Date.now() / 1000 < cached.exp + config.clockToleranceS) return cached.identity;
        verified.delete(cacheKey);
      }
      const identity = await verify(match[1]);
      return identity;
    },
  };

  async function verify(token: string): Promise<AuthenticatedIdentity> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        algorithms: config.algorithms,
        issuer: config.issuer,
        audience: config.audience,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: config.clockToleranceS,
      }));
    } catch (err) {
      throw translate(err);
    }
    // jose checks iat only against a maximum token age: a token issued in the future (a wrong
    // clock at the issuer, or a token minted to outlive its rotation) is refused here.
    if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + config.clockToleranceS) {
      throw new AuthError('CLAIM_INVALID', 'Token claim "iat" is in the future');
    }
    const sub = payload.sub;
    if (typeof sub !== 'string' || !USER_ID.test(sub)) {
      throw new AuthError('CLAIM_INVALID', 'The "sub" claim must be 1 to 128 word characters');
    }
    const role = roleFrom(readClaim(payload, config.roleClaim)) ?? config.defaultRole;
    if (!role) throw new AuthError('NO_ROLE', `The token has no known role in claim "${config.roleClaim}"`);
    const identity = { userId: sub, role, expiresAt: payload.exp! };
    verified.set(createHash('sha256').update(token).digest('base64url'), { identity, exp: payload.exp! });
    return identity;
  }
}

/** Reads a claim by dotted path (`realm_access.roles`). */
function readClaim(payload: JWTPayload, path: string): unknown {
  let value: unknown = payload;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** A role claim may be a string or a list; the highest known role wins; case does not matter. */
export function roleFrom(claim: unknown): Role | undefined {
  const values = Array.isArray(claim) ? claim : [claim];
  let best: Role | undefined;
  for (const value of values) {
    const upper = typeof value === 'string' ? value.toUpperCase() : undefined;
    if (isRole(upper) && (best === undefined || ROLE_RANK[upper] > ROLE_RANK[best])) best = upper;
  }
  return best;
}

function translate(err: unknown): Error {
  if (err instanceof joseErrors.JWTExpired) return new AuthError('TOKEN_EXPIRED', 'Token expired');
  if (err instanceof joseErrors.JWTClaimValidationFailed)
    return new AuthError('CLAIM_INVALID', `Token claim "${err.claim}" is invalid: ${err.reason}`);
  if (err instanceof joseErrors.JOSEAlgNotAllowed)
    return new AuthError('ALGORITHM_NOT_ALLOWED', 'Token signed with an algorithm that is not allowed');
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return new AuthError('BAD_SIGNATURE', 'Token signature is invalid');
  if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return new AuthError('UNKNOWN_KEY', 'Token signed with an unknown key');
  }
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid)
    return new KeySourceError(`Key set unavailable: ${err.message}`);
  if (err instanceof joseErrors.JOSEError) return new AuthError('MALFORMED_TOKEN', `Malformed token: ${err.code}`);
  // Node's fetch fails with a TypeError carrying the network error as its cause.
  if (err instanceof TypeError && (err.message === 'fetch failed' || err.cause !== undefined)) {
    return new KeySourceError(`Key set unavailable: ${String((err.cause as Error | undefined)?.message ?? err.message)}`);
  }
  if (err instanceof TypeError || err instanceof SyntaxError) return new AuthError('MALFORMED_TOKEN', 'Malformed token');
  // A failed JWKS fetch (network) surfaces as a plain Error from fetch.
  return new KeySourceError(`Key set unavailable: ${(err as Error).message}`);
}
