import type { Identity } from '@lib/identity.js';
import type { Logger } from '@lib/logger.js';
import type { CostedContext } from './limits.js';

/**
 * Per-request state in the router: verified identity, request id, and a logger carrying both.
 * Over HTTP also how the operation's cost is charged (`chargeCost`) and what it was (`cost`).
 */
export interface RouterContext extends CostedContext {
  identity: Identity;
  requestId: string;
  log: Logger;
}
