/**
 * npm run token -- --sub alice --role TEACHER [--ttl 12h]
 * Mints a development token signed by the local development keys (.data/keys).
 */
import { parseArgs } from 'node:util';
import { isRole } from '../lib/identity.js';
import { mintUserToken } from '../lib/tokens.js';
import { DEV_AUDIENCE, DEV_ISSUER, ensureDevKeys } from './lib/dev-keys.js';

const { values } = parseArgs({
  options: {
    sub: { type: 'string', default: 'dev-teacher' },
    role: { type: 'string', default: 'TEACHER' },
    ttl: { type: 'string', default: '12h' },
  },
});
const role = values.role.toUpperCase();
if (!isRole(role)) {
  console.error(`--role must be STUDENT, TEACHER or ADMIN (got ${values.role})`);
  process.exit(2);
}
const keys = await ensureDevKeys();
console.log(
  await mintUserToken({
    privateJwk: keys.user.privateJwk,
    sub: values.sub,
    role,
    issuer: DEV_ISSUER,
    audience: DEV_AUDIENCE,
    expiresIn: values.ttl,
  }),
);
