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
 * Admission control for `/graphql` over HTTP. A replica serves at most `maxInFlight` requests at
 * once; one more is refused at once with 503 `SERVICE_UNAVAILABLE` (`reason: OVERLOADED`) and
 * `Retry-After`, before its token is checked or its body read. Without it, a replica past what it
 * (or a subgraph behind it) can serve queues every request until the subgraph deadline, and
 * everyone waits; refused at once, a client backs off or goes to another replica, and the ones
 * admitted are served at the usual speed. A request leaves when its response is finished or its
 * client goes away (`close`), whichever comes first.
 */
export function createAdmission(opts: AdmissionOptions) {
  let inFlight = 0;
  let lastWarnAt = 0;
  let refusedSinceWarn = 0;
  new Gauge({
    name: 'http_requests_in_flight',
    help: 'GraphQL requests over HTTP being served by this replica',
    registers: [opts.registry],
    collect() {
      this.set(inFlight);
    },
  });
  const refused = new Counter({
    name: 'http_requests_refused_overloaded_total',
    help: 'GraphQL requests over HTTP refused at once because MAX_IN_FLIGHT were being served',
    registers: [opts.registry],
  });

  const middleware = (_req: Request, res: Response, next: NextFunction) => {
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
    res.once('close', () => inFlight--);
    next();
  };

  return {
    middleware,
    /** Requests being served now. */
    inFlight: () => inFlight,
  };
}
