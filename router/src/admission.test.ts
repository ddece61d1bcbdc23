import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import express from 'express';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createAdmission, OVERLOADED_RETRY_AFTER_S } from './admission.js';

/** A server whose /graphql holds every admitted request until `releaseAll()`. */
async function heldServer(maxInFlight: number) {
  const registry = new Registry();
  const warnings: unknown[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line)) });
  const admission = createAdmission({ maxInFlight, registry, log });
  let held: (() => void)[] = [];
  const app = express();
  app.use('/graphql', admission.middleware, (_req, res) => {
    held.push(() => res.json({ data: { ok: true } }));
  });
  const server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  const waitHeld = async (n: number) => {
    for (let i = 0; held.length < n; i++) {
      if (i > 500) throw new Error(`only ${held.length} of ${n} requests reached the handler`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const releaseAll = () => {
    const now = held;
    held = [];
    for (const release of now) release();
  };
  const metric = async (name: string) => (await registry.getSingleMetric(name)!.get()).values[0]?.value;
  return { server, url, admission, waitHeld, releaseAll, metric, warnings };
}

describe('admission control (MAX_IN_FLIGHT)', () => {
  let s: Awaited<ReturnType<typeof heldServer>>;
  let server: Server | undefined;
  beforeEach(() => (server = undefined));
  afterEach(async () => {
    if (!server) return;
    s.releaseAll();
    server.closeAllConnections();
    await new Promise((r) => server!.close(r));
  });

  it('serves up to the limit and refuses one more at once with 503 OVERLOADED and Retry-After', async () => {
    s = await heldServer(2);
    server = s.server;
    const first = fetch(s.url, { method: 'POST' });
    const second = fetch(s.url, { method: 'POST' });
    await s.waitHeld(2);
    expect(s.admission.inFlight()).toBe(2);
    expect(await s.metric('graphql_requests_in_flight')).toBe(2);

    const third = await fetch(s.url, { method: 'POST' });
    expect(third.status).toBe(503);
    expect(third.headers.get('retry-after')).toBe(String(OVERLOADED_RETRY_AFTER_S));
    expect(await third.json()).toEqual({
      errors: [
        {
          message: `The service is busy; retry in ${OVERLOADED_RETRY_AFTER_S} s`,
          extensions: { code: 'SERVICE_UNAVAILABLE', reason: 'OVERLOADED', retryAfter: OVERLOADED_RETRY_AFTER_S },
        },
      ],
    });
    expect(await s.metric('overload_rejections_total')).toBe(1);
    expect(s.warnings).toEqual([expect.objectContaining({ msg: 'requests refused: too many in flight', maxInFlight: 2 })]);

    s.releaseAll();
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
    // Their slots are free again.
    await waitFor(() => s.admission.inFlight() === 0);
    const again = fetch(s.url, { method: 'POST' });
    await s.waitHeld(1);
    s.releaseAll();
    expect((await again).status).toBe(200);
  });

  it('frees the slot of a client that goes away before its answer', async () => {
    s = await heldServer(1);
    server = s.server;
    const gone = new AbortController();
    const abandoned = fetch(s.url, { method: 'POST', signal: gone.signal }).then(
      () => 'answered',
      (err: Error) => err.name,
    );
    await s.waitHeld(1);
    expect((await fetch(s.url, { method: 'POST' })).status).toBe(503);
    gone.abort();
    expect(await abandoned).toBe('AbortError');
    await waitFor(() => s.admission.inFlight() === 0);
    const next = fetch(s.url, { method: 'POST' });
    await s.waitHeld(2); // the abandoned one's handler is still held; the new one was admitted
    s.releaseAll();
    expect((await next).status).toBe(200);
    await waitFor(() => s.admission.inFlight() === 0);
  });

  it('frees the slots of requests pipelined on a connection that closes before they are answered', async () => {
    s = await heldServer(2);
    server = s.server;
    const { port } = new URL(s.url);
    const socket = connect(Number(port), '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    const request = 'POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n';
    socket.write(request + request); // the second waits behind the first: it has no response of its own yet
    await waitFor(() => s.admission.inFlight() === 2);
    expect((await fetch(s.url, { method: 'POST' })).status).toBe(503);
    socket.destroy();
    await waitFor(() => s.admission.inFlight() === 0);
    s.releaseAll(); // the handlers answer a connection that is gone: nothing is counted twice
    await new Promise((r) => setTimeout(r, 50));
    expect(s.admission.inFlight()).toBe(0);
    const next = fetch(s.url, { method: 'POST' });
    await s.waitHeld(1);
    expect(s.admission.inFlight()).toBe(1);
    s.releaseAll();
    expect((await next).status).toBe(200);
  });
});

async function waitFor(condition: () => boolean) {
  for (let i = 0; !condition(); i++) {
    if (i > 500) throw new Error('condition never held');
    await new Promise((r) => setTimeout(r, 10));
  }
}
