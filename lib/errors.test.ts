import { describe, expect, it } from '@jest/globals';
import { GraphQLError } from 'graphql';
import { isDependencyUnavailable } from './errors.js';

describe('isDependencyUnavailable', () => {
  it('recognises a database or Redis out of reach anywhere in the cause chain', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    expect(isDependencyUnavailable(refused)).toBe(true);
    expect(isDependencyUnavailable(new GraphQLError('wrapped', { originalError: new Error('x', { cause: refused }) }))).toBe(true);
    // Prisma's codes: can't reach, pool timeout, no connection for a transaction in time.
    for (const code of ['P1001', 'P2024', 'P2028'])
      expect(isDependencyUnavailable(Object.assign(new Error('prisma'), { code }))).toBe(true);
    // A driver adapter's PostgreSQL error: admin shutdown, cannot connect now, connection failure.
    for (const originalCode of ['57P01', '57P03', '08006']) {
      expect(isDependencyUnavailable({ name: 'DriverAdapterError', message: 'x', cause: { kind: 'postgres', originalCode } })).toBe(true);
    }
    expect(isDependencyUnavailable(new Error('server login has been failing, try again later (server_login_retry)'))).toBe(true);
    expect(isDependencyUnavailable(new Error('Client has encountered a connection error and is not queryable'))).toBe(true);
    expect(
      isDependencyUnavailable(
        Object.assign(new Error('Reached the max retries per request limit (which is 1).'), { name: 'MaxRetriesPerRequestError' }),
      ),
    ).toBe(true);
  });

  it('leaves bugs and refusals alone', () => {
    expect(isDependencyUnavailable(new TypeError("Cannot read properties of undefined (reading 'id')"))).toBe(false);
    expect(isDependencyUnavailable(Object.assign(new Error('Unique constraint failed'), { code: 'P2002' }))).toBe(false);
    expect(isDependencyUnavailable({ kind: 'postgres', originalCode: '23505', message: 'duplicate key' })).toBe(false);
    expect(isDependencyUnavailable(null)).toBe(false);
    const loop: { message: string; cause?: unknown } = { message: 'loop' };
    loop.cause = loop;
    expect(isDependencyUnavailable(loop)).toBe(false);
  });
});
