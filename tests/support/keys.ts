import type { JWK } from 'jose';
import { generateJwkPair, type KeyPairJwk } from '../../lib/keys.js';
import type { Role } from '../../lib/identity.js';
import { mintUserToken } from '../../lib/tokens.js';

export const TEST_ISSUER = 'https://idp.test.local/';
export const TEST_AUDIENCE = 'ai-teacher-test';

export interface TestKeys {
  user: KeyPairJwk;
  internal: KeyPairJwk;
  jwks: string;
  token(sub: string, role: Role, extra?: { expiresIn?: string | number; claims?: Record<string, unknown> }): Promise<string>;
}

/** Fresh keys per test file: an identity provider's key set and the router's internal key. */
export async function createTestKeys(): Promise<TestKeys> {
  const user = await generateJwkPair('RS256');
  const internal = await generateJwkPair('EdDSA');
  return {
    user,
    internal,
    jwks: JSON.stringify({ keys: [user.publicJwk] }),
    token: (sub, role, extra = {}) =>
      mintUserToken({ privateJwk: user.privateJwk as JWK, sub, role, issuer: TEST_ISSUER, audience: TEST_AUDIENCE, ...extra }),
  };
}
