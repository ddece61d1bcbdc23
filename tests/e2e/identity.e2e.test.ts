import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT, UnsecuredJWT, importJWK } from 'jose';
import { generateJwkPair } from '../../lib/keys.js';
import { createAssertionSigner } from '../../lib/internal-auth.js';
import { TEST_AUDIENCE, TEST_ISSUER } from '../support/keys.js';
import { startTestStack, type TestStack } from '../support/stack.js';

const ME = 'query Me { myCourses { id title } }';

describe('identity at the router and the subgraphs', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startTestStack();
  });
  after(() => stack?.stop());

  const expectRejected = async (token: string | undefined, reason: string) => {
    const res = await stack.gql(ME, {}, token === undefined ? {} : { headers: { authorization: token } });
    assert.equal(res.status, 401, `status for ${reason}`);
    assert.equal(res.body.errors?.[0]?.extensions?.['code'], 'UNAUTHENTICATED');
    assert.equal(res.body.errors?.[0]?.extensions?.['reason'], reason);
    assert.equal(res.body.data, undefined);
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
    assert.ok(created.body.data?.createCourse.id);

    const aliceToken = await stack.token(alice, 'STUDENT');
    const spoofed = await stack.gql<{ myCourses: { id: string }[] }>(
      ME,
      {},
      {
        token: aliceToken,
        headers: { 'x-user-id': bob, 'x-user-role': 'ADMIN', 'x-internal-assertion': 'forged' },
      },
    );
    assert.equal(spoofed.status, 200);
    assert.deepEqual(spoofed.body.data?.myCourses, []);
    const direct = await stack.gql(
      `query { course(id: "${created.body.data!.createCourse.id}") { title } }`,
      {},
      { token: aliceToken, headers: { 'x-user-id': bob } },
    );
    assert.equal(direct.body.errors?.[0]?.extensions?.['code'], 'FORBIDDEN');
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
    assert.equal(bare.status, 401);
    assert.equal(((await bare.json()) as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions.code, 'UNAUTHENTICATED');

    const attacker = await generateJwkPair('EdDSA');
    const forgedSigner = await createAssertionSigner(attacker.privateJwk);
    const forged = await post({
      'x-internal-assertion': await forgedSigner.sign({ identity: { userId: 'admin', role: 'ADMIN' }, subgraph: 'rag' }),
    });
    assert.equal(forged.status, 401);

    const realSigner = await createAssertionSigner(stack.keys.internal.privateJwk);
    const forChat = await post({
      'x-internal-assertion': await realSigner.sign({ identity: { userId: 'admin', role: 'ADMIN' }, subgraph: 'chat' }),
    });
    assert.equal(forChat.status, 401, 'an assertion for another subgraph is refused');

    const mismatched = await post({
      'x-internal-assertion': await realSigner.sign({ identity: { userId: 'alice', role: 'STUDENT' }, subgraph: 'rag' }),
      'x-user-id': 'bob',
    });
    assert.equal(mismatched.status, 401);

    const valid = await post({
      'x-internal-assertion': await realSigner.sign({ identity: { userId: 'alice', role: 'STUDENT' }, subgraph: 'rag' }),
    });
    assert.equal(valid.status, 200, 'the control: a valid assertion passes');
  });

  it('carries one request id through the router and a subgraph, and returns it', async () => {
    const token = await stack.token(stack.user('tracer'), 'TEACHER');
    const requestId = `trace-${Date.now()}`;
    const res = await stack.gql('query TraceMe { myCourses { id } }', {}, { token, headers: { 'x-request-id': requestId } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-request-id'), requestId);
    await new Promise((r) => setTimeout(r, 200));
    const inRouter = stack.services['router']!.lines.filter((l) => l.includes(requestId));
    const inRag = stack.services['rag']!.lines.filter((l) => l.includes(requestId));
    assert.ok(
      inRouter.some((l) => JSON.parse(l).reqId === requestId),
      'router logged the request id',
    );
    assert.ok(
      inRag.some((l) => JSON.parse(l).reqId === requestId && JSON.parse(l).msg === 'graphql operation'),
      'rag logged the request id',
    );

    const generated = await stack.gql('{ myCourses { id } }', {}, { token, headers: { 'x-request-id': 'bad id with spaces' } });
    assert.match(generated.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });
});
