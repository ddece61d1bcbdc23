import { createHash } from 'node:crypto';
import type { InfraEnv } from '../infra.js';
import { DEV_AUDIENCE, DEV_ISSUER, type DevKeys } from './dev-keys.js';
import type { StackOptions } from './stack.js';

/**
 * What `npm run dev` starts: every service on its fixed port, wired to the dev
 * profile's PostgreSQL, PgBouncer and Redis, with the user's own settings
 * (EMBEDDINGS_*, LLM_*, VECTOR_STORE, QDRANT_*, RATE_LIMIT_*, LOG_LEVEL) passed on.
 */
export function devStackOptions(opts: {
  infra: InfraEnv;
  keys: DevKeys;
  devToken: string;
  routerPort: number;
  parentEnv: NodeJS.ProcessEnv;
  onLine?: StackOptions['onLine'];
}): StackOptions {
  const { infra, keys, parentEnv } = opts;
  // Document.fileUrl links: signed by rag, checked by the router; derived from the dev keys so links survive restarts.
  const fileUrlSecret = createHash('sha256')
    .update(`file-links:${JSON.stringify(keys.internal.privateJwk)}`)
    .digest('base64url');
  return {
    inheritSettings: true,
    env: {
      NODE_ENV: 'development',
      HOST: '127.0.0.1',
      LOG_LEVEL: parentEnv['LOG_LEVEL'] ?? 'info',
      LOG_FORMAT: 'json',
      DATABASE_URL: infra.DATABASE_URL,
      REDIS_URL: infra.REDIS_URL,
      BLOB_DIR: '.data/dev/blobs',
      INTERNAL_JWT_PUBLIC_JWK: JSON.stringify(keys.internal.publicJwk),
    },
    perService: {
      router: {
        // Loopback unless asked: the Sandbox page embeds a TEACHER token.
        HOST: parentEnv['DEV_ROUTER_HOST'] ?? '127.0.0.1',
        JWT_ISSUER: DEV_ISSUER,
        JWT_AUDIENCE: DEV_AUDIENCE,
        JWT_JWKS: JSON.stringify({ keys: [keys.user.publicJwk] }),
        INTERNAL_JWT_PRIVATE_JWK: JSON.stringify(keys.internal.privateJwk),
        SANDBOX_DEV_TOKEN: opts.devToken,
        FILE_URL_SECRET: fileUrlSecret,
      },
      rag: { FILE_URL_SECRET: fileUrlSecret },
    },
    ports: { router: opts.routerPort, rag: 4001, chat: 4002, exam: 4003, tasks: 4004, 'worker-1': 4010 },
    ...(opts.onLine ? { onLine: opts.onLine } : {}),
  };
}
