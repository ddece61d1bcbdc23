import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { generateJwkPair, type KeyPairJwk } from '../../lib/keys.js';

export const DEV_ISSUER = 'ai-teacher-dev';
export const DEV_AUDIENCE = 'ai-teacher';
export const DEV_KEYS_PATH = '.data/keys/dev-keys.json';

export interface DevKeys {
  /** Signs development user tokens (stands in for an OIDC provider). */
  user: KeyPairJwk;
  /** Signs the router's internal assertions. */
  internal: KeyPairJwk;
}

/** Development keys, made once and kept under .data/ so tokens survive restarts. Never for production. */
export async function ensureDevKeys(path = DEV_KEYS_PATH): Promise<DevKeys> {
  if (existsSync(path)) return JSON.parse(readFileSync(path, 'utf8')) as DevKeys;
  const keys: DevKeys = { user: await generateJwkPair('RS256'), internal: await generateJwkPair('EdDSA') };
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(keys, null, 2), { mode: 0o600 });
  return keys;
}
