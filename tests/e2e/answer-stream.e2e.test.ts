import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { answerKey, createAnswerPublisher, type AnswerPublisher } from '../../lib/answers/stream.js';
import { createPrisma, Prisma, sqlOf, type PrismaClient } from '../../lib/db/client.js';
import { stopService, type ServiceProcess } from '../../scripts/lib/stack.js';
import { testInfra } from '../support/infra.js';
import { startExtraRouter, startTestStack, type TestStack } from '../support/stack.js';
import { subscribe, type Subscription } from '../support/ws.js';

/**
 * `answerStream` end to end: real router and chat subgraph, the answer's events published here
 * as the answer worker would (no worker runs), its message row written here as the worker and
 * the sweeper would.
 */

interface AnswerEvent {
  type: 'SNAPSHOT' | 'DELTA' | 'RESET' | 'DONE';
  seq: number;
  text: string;
  message: { id: string; status: string; content: string; error?: { code: string } | null } | null;
}
type Stream = { answerStream: AnswerEvent };

const STREAM = `subscription($id: ID!) {
  answerStream(messageId: $id) { type seq text message { id status content error { code } } }
}`;
/** The same, as a client with aliases and fragments might write it. */
const ALIASED = `subscription Answer($messageId: ID!) {
  a: answerStream(messageId: $messageId) { __typename kind: type ...Body m: message { ...Msg } }
}
fragment Body on AnswerEvent { n: seq text }
fragment Msg on Message { __typename st: status body: content conversation { id } }`;

/** Recheck period of the second router, on which the done event of an answer never comes. */
const RECHECK_MS = 300;

const events = (sub: Subscription<Stream>) => sub.messages.map((m) => m.data!.answerStream);
const brief = (e: AnswerEvent) => [e.type, e.seq, e.text, e.message ? `${e.message.status}:${e.message.content}` : null];

describe('answerStream over graphql-ws', () => {
  let stack: TestStack;
  let prisma: PrismaClient;
  let redis: Redis;
  let publisher: AnswerPublisher;
  let owner: string;
  let ownerToken: string;
  let courseId: string;
  let conversationId: string;
  const subs: Subscription<unknown>[] = [];

  const open = <T = Stream>(query: string, messageId: string, token = ownerToken, url = stack.routerUrl, variable = 'id') => {
    const sub = subscribe<T>(url, token, query, { [variable]: messageId });
    subs.push(sub as Subscription<unknown>);
    return sub;
  };

  /** An assistant message of the owner's conversation, as askTutor leaves it. */
  const answer = async (data: { status?: 'GENERATING' | 'COMPLETE' | 'FAILED'; content?: string } = {}) => {
    const row = await prisma.message.create({
      data: {
        conversationId,
        courseId,
        userId: owner,
        role: 'ASSISTANT',
        status: data.status ?? 'GENERATING',
        content: data.content ?? '',
      },
    });
    return row.id;
  };

  /** A counter of the router's by its `source` label. */
  const readsBySource = async (metric: string) => {
    const metrics = await (await fetch(`${stack.services['router']!.opsUrl}/metrics`)).text();
    return (source: string) => Number(new RegExp(`^${metric}\\{source="${source}"[^}]*\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0);
  };

  /** The owner becomes a member of the course (askTutor needs one). */
  const joinCourse = () =>
    prisma.courseMember.upsert({
      where: { courseId_userId: { courseId, userId: owner } },
      create: { courseId, userId: owner, role: 'STUDENT' },
      update: {},
    });

  /** Routers subscribed to the answer's channel. */
  const channelSubscribers = async (messageId: string) => {
    const [, count] = (await redis.pubsub('NUMSUB', answerKey(messageId))) as [string, number];
    return Number(count);
  };
  const eventually = async (check: () => Promise<boolean>, what: string, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const sentByRouter = async () => {
    const metrics = await (await fetch(`${stack.services['router']!.opsUrl}/metrics`)).text();
    return Number(/^subscription_messages_total(?:\{[^}]*\})? (\d+)/m.exec(metrics)?.[1] ?? NaN);
  };

  beforeAll(async () => {
    const infra = testInfra();
    stack = await startTestStack({ workers: 0 });
    prisma = createPrisma({ url: infra.DATABASE_URL });
    redis = new Redis(infra.REDIS_URL);
    publisher = createAnswerPublisher(redis);
    owner = stack.user('asker');
    ownerToken = await stack.token(owner, 'STUDENT');
    const course = await prisma.course.create({ data: { title: 'Answer streams', createdBy: owner } });
    courseId = course.id;
    const conversation = await prisma.conversation.create({ data: { courseId, userId: owner, title: 'Photosynthesis' } });
    conversationId = conversation.id;
  });
  afterAll(async () => {
    await Promise.all(subs.map((s) => s.dispose()));
    // The course goes with its conversation and messages: nothing is left GENERATING for a sweeper.
    if (courseId) await prisma.course.delete({ where: { id: courseId } }).catch(() => undefined);
    await prisma?.$disconnect();
    redis?.disconnect();
    await stack?.stop();
  });

  it('sends the text so far, then every later delta in order, then DONE with the final message, to early and late subscribers alike', async () => {
    const id = await answer();
    const sentBefore = await sentByRouter();
    await publisher.publish(id, { type: 'delta', text: 'Photosynthesis ' });
    await publisher.publish(id, { type: 'delta', text: 'turns light ' });

    const plain = open(STREAM, id);
    const aliased = open<{ a: Record<string, unknown> }>(ALIASED, id, ownerToken, stack.routerUrl, 'messageId');
    const first = await plain.until((d) => d.answerStream.type === 'SNAPSHOT');
    expect(brief(first.answerStream)).toEqual(['SNAPSHOT', 2, 'Photosynthesis turns light ', 'GENERATING:']);
    expect(first.answerStream.message).toMatchObject({ id, error: null });
    await aliased.until(() => true);
    // Both subscribers' listeners share the router's one subscription to the channel.
    expect(await channelSubscribers(id)).toBe(1);

    await publisher.publish(id, { type: 'delta', text: 'into ' });
    await publisher.publish(id, { type: 'delta', text: 'sugar.' });
    await plain.until((d) => d.answerStream.seq === 4);

    // A late subscriber gets the text so far in its snapshot.
    const late = open(STREAM, id);
    const caughtUp = await late.until(() => true);
    expect(brief(caughtUp.answerStream)).toEqual(['SNAPSHOT', 4, 'Photosynthesis turns light into sugar.', 'GENERATING:']);

    // The worker saves the message, then says it is done.
    const final = 'Photosynthesis turns light into sugar [1].';
    await prisma.message.update({ where: { id }, data: { status: 'COMPLETE', content: final, completedAt: new Date() } });
    await publisher.publish(id, { type: 'done', status: 'COMPLETE' });
    await Promise.all([plain.done, aliased.done, late.done]);

    expect(events(plain).map(brief)).toEqual([
      ['SNAPSHOT', 2, 'Photosynthesis turns light ', 'GENERATING:'],
      ['DELTA', 3, 'into ', null],
      ['DELTA', 4, 'sugar.', null],
      ['DONE', 5, '', `COMPLETE:${final}`],
    ]);
    expect(events(late).map(brief)).toEqual([
      ['SNAPSHOT', 4, 'Photosynthesis turns light into sugar.', 'GENERATING:'],
      ['DONE', 5, '', `COMPLETE:${final}`],
    ]);
    // Exactly the client's shape: aliases, fragments, __typename; message null on deltas.
    expect(aliased.messages.map((m) => m.data)).toStrictEqual([
      {
        a: {
          __typename: 'AnswerEvent',
          kind: 'SNAPSHOT',
          n: 2,
          text: 'Photosynthesis turns light ',
          m: { __typename: 'Message', st: 'GENERATING', body: '', conversation: { id: conversationId } },
        },
      },
      { a: { __typename: 'AnswerEvent', kind: 'DELTA', n: 3, text: 'into ', m: null } },
      { a: { __typename: 'AnswerEvent', kind: 'DELTA', n: 4, text: 'sugar.', m: null } },
      {
        a: {
          __typename: 'AnswerEvent',
          kind: 'DONE',
          n: 5,
          text: '',
          m: { __typename: 'Message', st: 'COMPLETE', body: final, conversation: { id: conversationId } },
        },
      },
    ]);
    // Once the last listener has gone, the router leaves the channel.
    await eventually(async () => (await channelSubscribers(id)) === 0, 'the router unsubscribed from the answer channel');
    expect((await sentByRouter()) - sentBefore).toBe(10);

    // After the end: the final message, at once.
    const after = open(STREAM, id);
    await after.done;
    expect(events(after).map(brief)).toEqual([
      ['SNAPSHOT', 5, final, `COMPLETE:${final}`],
      ['DONE', 5, '', `COMPLETE:${final}`],
    ]);
  });

  it('shapes DONE from the final row the done event carries, exactly as a read through the gateway gives it', async () => {
    const finalReads = async () => {
      const count = await readsBySource('answer_stream_final_reads_total');
      return { event: count('event'), gateway: count('gateway') };
    };
    const FINAL = `fragment Final on Message {
      __typename id role st: status content mode grounded engine model cached createdAt
      error { code message }
      citations { __typename n: index chunkId pageStart pageEnd quote document { __typename id } }
      u: usage @include(if: $withUsage) { promptTokens completionTokens }
    }`;
    const RICH = `subscription($id: ID!, $withUsage: Boolean!) { answerStream(messageId: $id) { type message { ...Final } } } ${FINAL}`;
    const READ = `query($id: ID!, $withUsage: Boolean!) { message(id: $id) { ...Final } } ${FINAL}`;
    /** Asks for the conversation too, which the row does not answer: read through the gateway. */
    const WITH_CONVERSATION = `subscription($id: ID!) { answerStream(messageId: $id) { type message { status conversation { id } } } }`;

    const id = await answer();
    const before = await finalReads();
    const rich = subscribe<{ answerStream: { type: string; message: unknown } }>(stack.routerUrl, ownerToken, RICH, {
      id,
      withUsage: true,
    });
    const other = open<{ answerStream: { type: string; message: unknown } }>(WITH_CONVERSATION, id);
    subs.push(rich as Subscription<unknown>);
    await Promise.all([rich.until((d) => d.answerStream.type === 'SNAPSHOT'), other.until((d) => d.answerStream.type === 'SNAPSHOT')]);

    // The worker saves the answer and sends the row the statement returned with its done event.
    const citations = [{ index: 1, chunkId: 'd:3', documentId: randomUUID(), pageStart: 2, pageEnd: 3, quote: 'Light “becomes” sugar.' }];
    const [row] = await sqlOf(prisma)<Record<string, unknown>>(Prisma.sql`
      UPDATE "Message" SET status = 'COMPLETE', content = 'Light becomes sugar [1].', citations = ${JSON.stringify(citations)}::jsonb,
        grounded = true, engine = 'MODEL', model = 'fake', "promptTokens" = 12, "completionTokens" = 5, "completedAt" = now()
      WHERE id = ${id}::uuid RETURNING *`);
    await publisher.publish(id, { type: 'done', status: 'COMPLETE', message: JSON.parse(JSON.stringify(row)) as Record<string, unknown> });
    await Promise.all([rich.done, other.done]);

    const done = rich.messages.at(-1)!.data!.answerStream;
    expect(done.type).toBe('DONE');
    const read = await stack.gql<{ message: unknown }>(READ, { id, withUsage: true }, { token: ownerToken });
    expect(read.body.errors).toBeUndefined();
    expect(done.message).toStrictEqual(read.body.data!.message);
    expect(done.message).toMatchObject({
      st: 'COMPLETE',
      u: { promptTokens: 12, completionTokens: 5 },
      citations: [{ n: 1, document: { id: citations[0]!.documentId } }],
    });
    expect(other.messages.at(-1)!.data!.answerStream).toStrictEqual({
      type: 'DONE',
      message: { status: 'COMPLETE', conversation: { id: conversationId } },
    });
    expect(await finalReads()).toEqual({ event: before.event + 1, gateway: before.gateway + 1 });
  });

  it('starts the asker’s stream from the row askTutor recorded (no read through the gateway), and only theirs', async () => {
    const startReads = async () => {
      const count = await readsBySource('answer_stream_start_reads_total');
      return { row: count('row'), gateway: count('gateway') };
    };
    await joinCourse();
    const ASK = `mutation($input: AskTutorInput!) { askTutor(input: $input) { id status } }`;
    const asked = await stack.gql<{ askTutor: { id: string; status: string } }>(
      ASK,
      { input: { courseId, conversationId, question: 'What does chlorophyll absorb?' } },
      { token: ownerToken },
    );
    expect(asked.body.errors).toBeUndefined();
    const id = asked.body.data!.askTutor.id;
    // The chat subgraph wrote the row at the head of the answer's stream (no worker runs: nothing else is there).
    const entries = await redis.xrange(answerKey(id), '-', '+');
    expect(entries).toHaveLength(1);
    const fields = entries[0]![1];
    expect(fields[0]).toBe('row');
    expect(JSON.parse(fields[1]!)).toMatchObject({ id, userId: owner, status: 'GENERATING', role: 'ASSISTANT' });

    const FIELDS = `id role status content mode grounded engine cached createdAt error { code } citations { index }`;
    const before = await startReads();
    const sub = open<{ answerStream: { type: string; message: Record<string, unknown> } }>(
      `subscription($id: ID!) { answerStream(messageId: $id) { type message { ${FIELDS} } } }`,
      id,
    );
    const snapshot = await sub.until((d) => d.answerStream.type === 'SNAPSHOT');
    expect(await startReads()).toEqual({ row: before.row + 1, gateway: before.gateway });
    // Exactly what a read through the gateway gives.
    const read = await stack.gql<{ message: unknown }>(`query($id: ID!) { message(id: $id) { ${FIELDS} } }`, { id }, { token: ownerToken });
    expect(read.body.errors).toBeUndefined();
    expect(snapshot.answerStream.message).toStrictEqual(read.body.data!.message);
    sub.unsubscribe();

    // Someone else, whatever the stream holds, is answered by the gateway: refused.
    const stranger = open(STREAM, id, await stack.token(stack.user('stranger'), 'STUDENT'));
    await expect(stranger.done).rejects.toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'NOT_FOUND' }) })]);
    expect(stranger.messages).toEqual([]);
    expect(await startReads()).toEqual({ row: before.row + 1, gateway: before.gateway + 1 });
    // The answer ends here, as a cancelled one does (no worker runs in this stack).
    await sqlOf(prisma)(Prisma.sql`UPDATE "Message" SET status = 'CANCELLED' WHERE id = ${id}::uuid`);
  });

  it('does not bring back an answer whose conversation was deleted, though its stream still holds the row', async () => {
    await joinCourse();
    // A conversation of its own (askTutor opens one): the others' stays.
    const asked = await stack.gql<{ askTutor: { id: string; conversation: { id: string } } }>(
      `mutation($input: AskTutorInput!) { askTutor(input: $input) { id conversation { id } } }`,
      { input: { courseId, question: 'Where does the Calvin cycle happen?' } },
      { token: ownerToken },
    );
    expect(asked.body.errors).toBeUndefined();
    const { id, conversation } = asked.body.data!.askTutor;
    // Written, as the worker does: the final row in the done event.
    const [row] = await sqlOf(prisma)<Record<string, unknown>>(Prisma.sql`
      UPDATE "Message" SET status = 'COMPLETE', content = 'In the stroma.', "completedAt" = now() WHERE id = ${id}::uuid RETURNING *`);
    await publisher.publish(id, { type: 'done', status: 'COMPLETE', message: JSON.parse(JSON.stringify(row)) as Record<string, unknown> });
    const deleted = await stack.gql(`mutation($id: ID!) { deleteConversation(id: $id) }`, { id: conversation.id }, { token: ownerToken });
    expect(deleted.body.errors).toBeUndefined();
    expect(await redis.exists(answerKey(id))).toBe(1); // the stream and its rows outlive the message
    const sub = open(STREAM, id);
    await expect(sub.done).rejects.toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'NOT_FOUND' }) })]);
    expect(sub.messages).toEqual([]);
  });

  it('sends a final answer whose stream has expired from the database', async () => {
    const id = await answer({ status: 'COMPLETE', content: 'Chlorophyll absorbs red and blue light.' });
    const sub = open(STREAM, id);
    await sub.done;
    expect(events(sub).map(brief)).toEqual([
      ['SNAPSHOT', 0, 'Chlorophyll absorbs red and blue light.', 'COMPLETE:Chlorophyll absorbs red and blue light.'],
      ['DONE', 0, '', 'COMPLETE:Chlorophyll absorbs red and blue light.'],
    ]);
  });

  it('refuses someone else’s answer and an unknown one, and lets an admin watch', async () => {
    const id = await answer();
    await publisher.publish(id, { type: 'delta', text: 'Secret' });
    const stranger = open(STREAM, id, await stack.token(stack.user('stranger'), 'STUDENT'));
    const teacher = open(STREAM, id, await stack.token(stack.user('teacher'), 'TEACHER'));
    const unknown = open(STREAM, randomUUID());
    for (const sub of [stranger, teacher, unknown]) {
      const refusal = await sub.done.then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refusal).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: expect.any(String) }) })]);
      expect(['FORBIDDEN', 'NOT_FOUND']).toContain((refusal as [{ extensions: { code: string } }])[0].extensions.code);
      expect(sub.messages).toEqual([]);
    }
    const admin = open(STREAM, id, await stack.token(stack.user('admin'), 'ADMIN'));
    const snapshot = await admin.until(() => true);
    expect(brief(snapshot.answerStream)).toEqual(['SNAPSHOT', 1, 'Secret', 'GENERATING:']);
    admin.unsubscribe();
  });

  it('leaves the answer’s channel when the client completes before the end', async () => {
    const id = await answer();
    const sub = open(STREAM, id);
    await sub.until(() => true);
    expect(await channelSubscribers(id)).toBe(1);
    sub.unsubscribe();
    await eventually(async () => (await channelSubscribers(id)) === 0, 'the router unsubscribed from the answer channel');
  });

  it('ends a stream whose done event never comes once the message is final (the recheck)', async () => {
    let router2: ServiceProcess | undefined;
    try {
      router2 = await startExtraRouter(stack, 'router-2', { ANSWER_RECHECK_MS: String(RECHECK_MS) });
      const id = await answer();
      await publisher.publish(id, { type: 'delta', text: 'Half an ' });
      const sub = open(STREAM, id, ownerToken, router2.url);
      await sub.until(() => true);
      await publisher.publish(id, { type: 'delta', text: 'answer' });
      await sub.until((d) => d.answerStream.seq === 2);
      // The worker died; the sweeper fails the message; no done event is ever published.
      await prisma.message.update({
        where: { id },
        data: { status: 'FAILED', content: 'Half an answer', errorCode: 'WORKER_CRASHED', errorMessage: 'The worker stopped' },
      });
      const t0 = Date.now();
      await sub.done;
      expect(Date.now() - t0).toBeLessThan(RECHECK_MS * 10);
      expect(events(sub).map(brief)).toEqual([
        ['SNAPSHOT', 1, 'Half an ', 'GENERATING:'],
        ['DELTA', 2, 'answer', null],
        ['DONE', 2, '', 'FAILED:Half an answer'],
      ]);
      expect(events(sub).at(-1)!.message!.error).toEqual({ code: 'WORKER_CRASHED' });
      // Its ordered shutdown closes the answer subscriber connection too, cleanly.
      const stopping = router2;
      router2 = undefined;
      expect(await stopService(stopping)).toBe(0);
    } finally {
      if (router2) await stopService(router2);
    }
  });
});
