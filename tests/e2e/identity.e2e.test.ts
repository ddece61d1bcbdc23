import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SignJWT, UnsecuredJWT, importJWK } from 'jose';
import { generateJwkPair } from '../../lib/keys.js';
import { createAssertionSigner } from '../../lib/internal-auth.js';
import { TEST_AUDIENCE, TEST_ISSUER } from '../support/keys.js';
import { startTestStack, type TestStack } from '../support/stack.js';

const ME = 'query Me { myCourses { id title } }';

describe('identity at the router and the subgraphs', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const expectRejected = async (token: string | undefined, reason: string) => {
    const res = await stack.gql(ME, {}, token === undefined ? {} : { headers: { authorization: token } });
    // The reason is in the object compared, so a failure names the case.
    expect({
      status: res.status,
      code: res.body.errors?.[0]?.extensions?.['code'],
      reason: res.body.errors?.[0]?.extensions?.['reason'],
    }).toEqual({
      status: 401,
      code: 'UNAUTHENTICATED',
      reason,
    });
    expect(res.body.data).toBeUndefined();
  };

  it('rejects missing, forged, expired, alg-none, wrong-issuer, wrong-audience and claim-less tokens with 401 and a code', async () => {
    const user = stack.keys.user;
    const rsKey = await importJWK(user.privateJwk, 'RS256');
    const attacker = await generateJwkPair('RS256');
    const attackerKey = await importJWK(attacker.privateJwk, 'RS256');
    const base = (key = rsKey, kid = user.publicJwk.kid!) =>
      new SignJWT({ role: 'ADMIN' })
        .setProtectedHeader({ alg: 'RS256', kid })
        .setIssuedAt()
        .setSubject('mallory')
        .setIssuer(TEST_ISSUER)
        .setAudience(TEST_AUDIENCE)
        .setExpirationTime('5m');

    await expectRejected(undefined, 'MISSING_TOKEN');
    await expectRejected('Bearer garbage', 'MALFORMED_TOKEN');
    await expectRejected(`Bearer ${await base(attackerKey).sign(attackerKey)}`, 'BAD_SIGNATURE');
    await expectRejected(
      `Bearer ${await base()
        .setExpirationTime(Math.floor(Date.now() / 1000) - 120)
        .sign(rsKey)}`,
      'TOKEN_EXPIRED',
    );
    const none = new UnsecuredJWT({ role: 'ADMIN' })
      .setSubject('mallory')
      .setIssuer(TEST_ISSUER)
      .setAudience(TEST_AUDIENCE)
      .setExpirationTime('5m')
      .encode();
    await expectRejected(`Bearer ${none}`, 'ALGORITHM_NOT_ALLOWED');
    await expectRejected(`Bearer ${await base().setIssuer('https://evil.example/').sign(rsKey)}`, 'CLAIM_INVALID');
    await expectRejected(`Bearer ${await base().setAudience('other').sign(rsKey)}`, 'CLAIM_INVALID');
    const noSub = await new SignJWT({ role: 'ADMIN' })
      .setProtectedHeader({ alg: 'RS256', kid: user.publicJwk.kid! })
      .setIssuer(TEST_ISSUER)
      .setAudience(TEST_AUDIENCE)
      .setExpirationTime('5m')
      .sign(rsKey);
    await expectRejected(`Bearer ${noSub}`, 'CLAIM_INVALID');
    const noExp = await new SignJWT({ role: 'ADMIN' })
      .setProtectedHeader({ alg: 'RS256', kid: user.publicJwk.kid! })
      .setSubject('mallory')
      .setIssuer(TEST_ISSUER)
      .setAudience(TEST_AUDIENCE)
      .sign(rsKey);
    await expectRejected(`Bearer ${noExp}`, 'CLAIM_INVALID');
  });

  it('ignores a client-sent X-User-Id: the caller stays who the token says', async () => {
    const alice = stack.user('alice');
    const bob = stack.user('bob');
    const bobToken = await stack.token(bob, 'TEACHER');
    const created = await stack.gql<{ createCourse: { id: string } }>(
      'mutation { createCourse(input: { title: "Bob only" }) { id } }',
      {},
      { token: bobToken },
    );
    const courseId = created.body.data?.createCourse.id;
    expect(courseId).toEqual(expect.any(String));
    const COURSE = `query { course(id: "${courseId}") { title } }`;

    // The control: an admin (and bob) may read bob's course, so a forged identity or role would show.
    const admin = await stack.token(stack.user('real-admin'), 'ADMIN');
    expect((await stack.gql(COURSE, {}, { token: admin })).body).toEqual({ data: { course: { title: 'Bob only' } } });

    const aliceToken = await stack.token(alice, 'STUDENT');
    const forged = { 'x-user-id': bob, 'x-user-role': 'ADMIN', 'x-internal-assertion': 'forged' };
    const spoofed = await stack.gql<{ myCourses: { id: string }[] }>(ME, {}, { token: aliceToken, headers: forged });
    expect(spoofed.status).toBe(200);
    expect(spoofed.body.data?.myCourses).toEqual([]);
    const direct = await stack.gql(COURSE, {}, { token: aliceToken, headers: { 'x-user-id': bob } });
    expect(direct.body.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN');

    // A forged role: an ADMIN reads any course and a TEACHER or ADMIN creates one; the student alice may do neither.
    const asForgedAdmin = await stack.gql(COURSE, {}, { token: aliceToken, headers: forged });
    expect(asForgedAdmin.body.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN');
    expect((asForgedAdmin.body.data as { course: unknown } | null | undefined)?.course ?? null).toBeNull();
    for (const role of ['ADMIN', 'TEACHER']) {
      const create = await stack.gql<{ createCourse: { id: string } | null }>(
        'mutation { createCourse(input: { title: "Forged" }) { id } }',
        {},
        { token: aliceToken, headers: { 'x-user-role': role, 'x-user-id': bob } },
      );
      expect({ role, code: create.body.errors?.[0]?.extensions?.['code'] }).toEqual({ role, code: 'FORBIDDEN' });
      expect(create.body.data?.createCourse ?? null).toBeNull();
    }
    // Nothing was created in alice's (or bob's) name.
    const aliceCourses = await stack.gql<{ myCourses: { id: string }[] }>(ME, {}, { token: aliceToken });
    expect(aliceCourses.body.data?.myCourses).toEqual([]);
    const bobCourses = await stack.gql<{ myCourses: { id: string; title: string }[] }>(ME, {}, { token: bobToken });
    expect(bobCourses.body.data?.myCourses).toEqual([{ id: courseId, title: 'Bob only' }]);
  });

  it('refuses a direct call to a subgraph without an assertion, with a forged one, or with a mismatched X-User-Id', async () => {
    const ragUrl = stack.services['rag']!.url;
    const post = (headers: Record<string, string>) =>
      fetch(ragUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ query: '{ myCourses { id } }' }),
      });

    const bare = await post({ 'x-user-id': 'admin', 'x-user-role': 'ADMIN' });
    expect(bare.status).toBe(401);
    expect(((await bare.json()) as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions.code).toBe('UNAUTHENTICATED');

    const attacker = await generateJwkPair('EdDSA');
    const forgedSigner = await createAssertionSigner(attacker.privateJwk);
    const forged = await post({
      'x-internal-assertion': await forgedSigner.sign({ identity: { userId: 'admin', role: 'ADMIN' }, subgraph: 'rag' }),
    });
    expect(forged.status).toBe(401);

    const realSigner = await createAssertionSigner(stack.keys.internal.privateJwk);
    const forChat = await post({
      'x-internal-assertion': await realSigner.sign({ identity: { userId: 'admin', role: 'ADMIN' }, subgraph: 'chat' }),
    });
    // An assertion for another subgraph is refused.
    expect(forChat.status).toBe(401);

    const mismatched = await post({
      'x-internal-assertion': await realSigner.sign({ identity: { userId: 'alice', role: 'STUDENT' }, subgraph: 'rag' }),
      'x-user-id': 'bob',
    });
    expect(mismatched.status).toBe(401);

    const valid = await post({
      'x-internal-assertion': await realSigner.sign({ identity: { userId: 'alice', role: 'STUDENT' }, subgraph: 'rag' }),
    });
    // The control: a valid assertion passes.
    expect(valid.status).toBe(200);
  });

  it('carries one request id through the router and a subgraph, and returns it', async () => {
    const token = await stack.token(stack.user('tracer'), 'TEACHER');
    const requestId = `trace-${Date.now()}`;
    const res = await stack.gql('query TraceMe { myCourses { id } }', {}, { token, headers: { 'x-request-id': requestId } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe(requestId);
    await new Promise((r) => setTimeout(r, 200));
    const inRouter = stack.services['router']!.lines.filter((l) => l.includes(requestId));
    const inRag = stack.services['rag']!.lines.filter((l) => l.includes(requestId));
    // The router and rag logged the request id.
    expect(inRouter.map((l) => JSON.parse(l).reqId)).toContain(requestId);
    expect(inRag.map((l) => JSON.parse(l))).toContainEqual(expect.objectContaining({ reqId: requestId, msg: 'graphql operation' }));

    const generated = await stack.gql('{ myCourses { id } }', {}, { token, headers: { 'x-request-id': 'bad id with spaces' } });
    expect(generated.headers.get('x-request-id') ?? '').toMatch(/^[0-9a-f-]{36}$/);
  });
});
