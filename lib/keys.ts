import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { randomUUID } from 'node:crypto';

export interface KeyPairJwk {
  privateJwk: JWK;
  publicJwk: JWK;
}

/** Generates a key pair as JWKs (with `kid` and `alg`), for development keys and tests. */
export async function generateJwkPair(alg: 'EdDSA' | 'RS256' | 'ES256'): Promise<KeyPairJwk> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  const kid = randomUUID();
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg };
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { privateJwk, publicJwk };
}
