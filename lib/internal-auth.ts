import { SignJWT, importJWK, jwtVerify, type CryptoKey, type JWK, type KeyObject } from 'jose';
import { isRole, type Identity } from './identity.js';

/**
 * The internal assertion: a short-lived EdDSA JWT the router signs for one
 * subgraph per request. Subgraphs hold only the public key, so neither a
 * client nor a compromised subgraph can mint one.
 */
export const INTERNAL_ISSUER = 'ai-teacher-router';
export const INTERNAL_ALG = 'EdDSA';
const LIFETIME_S = 60;

type Key = CryptoKey | KeyObject | Uint8Array;

export const audienceFor = (subgraph: string) => `subgraph:${subgraph}`;

export interface AssertionSigner {
  sign(input: { identity: Identity; subgraph: string; requestId: string }): Promise<string>;
}

export async function createAssertionSigner(privateJwk: JWK): Promise<AssertionSigner> {
  const key = (await importJWK(privateJwk, INTERNAL_ALG)) as Key;
  return {
    sign: ({ identity, subgraph, requestId }) =>
      new SignJWT({ role: identity.role, rid: requestId })
        .setProtectedHeader({ alg: INTERNAL_ALG, typ: 'JWT' })
        .setIssuer(INTERNAL_ISSUER)
        .setAudience(audienceFor(subgraph))
        .setSubject(identity.userId)
        .setIssuedAt()
        .setExpirationTime(`${LIFETIME_S}s`)
        .sign(key),
  };
}

export interface VerifiedAssertion {
  identity: Identity;
  requestId: string;
}

export class AssertionError extends Error {
  override name = 'AssertionError';
}

export interface AssertionVerifier {
  verify(token: string | undefined): Promise<VerifiedAssertion>;
}

export async function createAssertionVerifier(publicJwk: JWK, subgraph: string): Promise<AssertionVerifier> {
  const key = (await importJWK(publicJwk, INTERNAL_ALG)) as Key;
  return {
    async verify(token) {
      if (!token) throw new AssertionError('missing internal assertion');
      let payload;
      try {
        ({ payload } = await jwtVerify(token, key, {
          algorithms: [INTERNAL_ALG],
          issuer: INTERNAL_ISSUER,
          audience: audienceFor(subgraph),
          requiredClaims: ['exp', 'iat', 'sub'],
          maxTokenAge: LIFETIME_S * 2,
          clockTolerance: 5,
        }));
      } catch (err) {
        throw new AssertionError(`invalid internal assertion: ${(err as Error).message}`);
      }
      if (!payload.sub || !isRole(payload.role) || typeof payload.rid !== 'string') {
        throw new AssertionError('internal assertion lacks sub, role or rid');
      }
      return { identity: { userId: payload.sub, role: payload.role }, requestId: payload.rid };
    },
  };
}
