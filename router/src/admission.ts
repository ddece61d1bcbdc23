import type { NextFunction, Request, Response } from 'express';
import { Counter, Gauge, type Registry } from 'prom-client';
import { ErrorCode, errorBody } from '@lib/errors.js';
import type { Logger } from '@lib/logger.js';

/** What a refused client is told to wait (Retry-After, `extensions.retryAfter`), in seconds. */
export const OVERLOADED_RETRY_AFTER_S = 1;
/** At most one warning a second about refusals (the counter has them all). */
const WARN_EVERY_MS = 1000;

export interface AdmissionOptions {
  /** Requests this replica serves at once; past it a new one is refused at once. */
  maxInFlight: number;
  registry: Registry;
  log: Logger;
}

/**
 * Admission control for GraphQL requests on `/graphql` over HTTP (not uploads, not graphql-ws).
 * A replica serves at most `maxInFlight` at once; one more is refused at once with 503
 * `SERVICE_UNAVAILABLE` (`reason: OVERLOADED`) and `Retry-After`, before its token is checked or
 * its body read. Without it, a replica past what it (or a subgraph behind it) can serve queues
 * every request until the subgraph deadline, and everyone waits; refused at once, a client backs
 * off for a second, and the ones admitted are served at the usual speed. A request leaves when
 * its response is done or its connection closes, whichever comes first (a request pipelined
 * behind another on a connection that closes never gets a response of its own to close).
 * Its slot is then free even if the gateway is still working on it for a client that went away:
 * that work ends by the subgraph deadline.
 */
export function createAdmission(opts: AdmissionOptions) {
  let inFlight = 0;
  let lastWarnAt = 0;
  let refusedSinceWarn = 0;
  new Gauge({
    name: 'graphql_requests_in_flight',
    help: 'GraphQL requests on /graphql over HTTP being served by this router replica',
    registers: [opts.registry],
    collect() {
      this.set(inFlight);
    },
  });
  const refused = new Counter({
    name: 'overload_rejections_total',
    help: 'GraphQL requests on /graphql over HTTP refused at once because MAX_IN_FLIGHT were being served',
    registers: [opts.registry],
  });

  const middleware = (req: Request, res: Response, next: NextFunction) => {
    if (inFlight >= opts.maxInFlight) {
      refused.inc();
      refusedSinceWarn++;
      const now = Date.now();
      if (now - lastWarnAt >= WARN_EVERY_MS) {
        opts.log.warn({ maxInFlight: opts.maxInFlight, refused: refusedSinceWarn }, 'requests refused: too many in flight');
        lastWarnAt = now;
        refusedSinceWarn = 0;
      }
      res.setHeader('Retry-After', String(OVERLOADED_RETRY_AFTER_S));
      res.status(503).json(
        errorBody(ErrorCode.SERVICE_UNAVAILABLE, `The service is busy; retry in ${OVERLOADED_RETRY_AFTER_S} s`, {
          reason: 'OVERLOADED',
          retryAfter: OVERLOADED_RETRY_AFTER_S,
        }),
      );
      return;
    }
    inFlight++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      inFlight--;
      res.off('close', release);
      req.socket.off('close', release);
    };
    res.once('close', release);
    req.socket.once('close', release);
    next();
  };

  return {
    middleware,
    /** Requests being served now. */
    inFlight: () => inFlight,
  };
}
