/**
 * Prints new secrets for docker-compose.yml's .env, one `NAME='value'` line each:
 *
 *   npm run -s secrets >> .env
 *   docker compose run --rm --no-deps migrate node --import tsx scripts/secrets.ts >> .env   (no Node on the host)
 *
 * The database password, the router's Ed25519 key pair for internal assertions (private half
 * for the router, public half for the subgraphs), the file-link secret, Qdrant's API key and
 * Grafana's admin password. Run it once: a second run makes new ones (sessions and links made
 * with the old ones stop working).
 */
import { randomBytes } from 'node:crypto';
import { generateJwkPair } from '../lib/keys.js';

const random = (bytes: number) => randomBytes(bytes).toString('base64url');
const pair = await generateJwkPair('EdDSA');
const lines = {
  POSTGRES_PASSWORD: random(24),
  INTERNAL_JWT_PRIVATE_JWK: JSON.stringify(pair.privateJwk),
  INTERNAL_JWT_PUBLIC_JWK: JSON.stringify(pair.publicJwk),
  FILE_URL_SECRET: random(32),
  QDRANT_API_KEY: random(24),
  GRAFANA_ADMIN_PASSWORD: random(18),
};
process.stdout.write(`# Secrets written by scripts/secrets.ts on ${new Date().toISOString()}\n`);
for (const [name, value] of Object.entries(lines)) process.stdout.write(`${name}='${value}'\n`);
