import type { Identity } from '@lib/identity.js';
import type { Logger } from '@lib/logger.js';

/** Per-request state in the router: verified identity, request id, and a logger carrying both. */
export interface RouterContext {
  identity: Identity;
  requestId: string;
  log: Logger;
}
