import { SignJWT, importJWK, type JWK } from 'jose';
import type { Role } from './identity.js';

export interface MintOptions {
  privateJwk: JWK;
  sub: string;
  role: Role;
  issuer: string;
  audience: string;
  /** jose duration ("2h") or seconds from now. */
  expiresIn?: string | number;
  claims?: Record<string, unknown>;
}

/** Signs a user token as an identity provider would: for development and tests only. */
export async function mintUserToken({ privateJwk, sub, role, issuer, audience, expiresIn = '12h', claims = {} }: MintOptions) {
  const alg = privateJwk.alg ?? 'RS256';
  const key = await importJWK(privateJwk, alg);
  return new SignJWT({ role, ...claims })
    .setProtectedHeader({ alg, typ: 'JWT', ...(privateJwk.kid ? { kid: privateJwk.kid } : {}) })
    .setIssuer(issuer)
    .setAudience(audience)
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(typeof expiresIn === 'number' ? Math.floor(Date.now() / 1000) + expiresIn : expiresIn)
    .sign(key);
}
