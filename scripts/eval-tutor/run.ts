/**
 * The code path of `npm run eval:tutor` and of tests/e2e/eval-tutor.e2e.test.ts: the material
 * ingested through the API into one course per material, then every question asked through
 * `askTutor` and its final message read from `answerStream`, then scored (score.ts).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createCourse, ingest, upload, waitForTask } from '../../tests/support/ingest.js';
import { makeTextPdf } from '../../tests/support/pdf-fixtures.js';
import { testInfra } from '../../tests/support/infra.js';
import type { TestStack } from '../../tests/support/stack.js';
import { subscribe } from '../../tests/support/ws.js';
import { GENERATED, TRACEMONKEY, type MaterialKey } from './documents.js';
import type { EvalQuestion } from './questions.js';
import { halfOf, scoreAnswer, type AnswerView, type Result } from './score.js';

/** Where ../shared/corpus/pdfs/tracemonkey.pdf is, and whether it is there. */
export const TRACEMONKEY_PATH = fileURLToPath(new URL('../../../shared/corpus/pdfs/tracemonkey.pdf', import.meta.url));
export const tracemonkeyPresent = () => existsSync(TRACEMONKEY_PATH);

/** The variables of the user's environment that choose the engine and retrieval, as `npm run dev` reads them. */
const SETTINGS = /^(LLM_|EMBEDDINGS_|VECTOR_STORE$|QDRANT_)/u;

/**
 * A Redis database of its own for this run's stack (8–15, at random; `bench:tutor` uses 7), as a
 * redis:// URL. The job queues live in Redis under fixed names, so stacks sharing the test
 * profile's Redis database take each other's jobs: a worker started elsewhere, with other
 * settings and the code it started with, would ingest or answer for this run. (Publish/subscribe
 * ignores databases; the answer streams' channels are per message.)
 */
export function privateRedisUrl(base = testInfra().REDIS_URL, db = 8 + Math.floor(Math.random() * 8)): string {
  const url = new URL(base);
  url.pathname = `/${db}`;
  return url.toString();
}

/**
 * Options for `startTestStack`: a Redis database of its own (`privateRedisUrl`), limits the
 * evaluation does not hit (router rate limits, the daily token budget), and, unless `offline`,
 * the model and retrieval settings of `env` (LLM_URL and LLM_MODEL choose the model engine).
 */
export function evalStackOptions(opts: { offline?: boolean; env?: NodeJS.ProcessEnv; redisUrl?: string } = {}) {
  const env = opts.env ?? process.env;
  const settings = opts.offline
    ? {}
    : Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => SETTINGS.test(e[0]) && e[1] !== undefined));
  const REDIS_URL = opts.redisUrl ?? privateRedisUrl();
  const services = { REDIS_URL, LLM_DAILY_TOKENS_PER_USER: '100000000', ...settings };
  return {
    workers: 1,
    router: { REDIS_URL, RATE_LIMIT_STUDENT: '100000000', RATE_LIMIT_TEACHER: '100000000' },
    subgraphs: services,
    worker: { ...services, ANSWER_FLUSH_MS: '0' },
  };
}

/** What the stack answers with, from the settings `evalStackOptions` passes. */
export function engineDescription(opts: { offline?: boolean; env?: NodeJS.ProcessEnv } = {}): string {
  const env = opts.env ?? process.env;
  if (!opts.offline && env.LLM_URL && env.LLM_MODEL) return `MODEL (${env.LLM_MODEL} at ${env.LLM_URL}, from LLM_URL/LLM_MODEL)`;
  return 'OFFLINE (extractive; set LLM_URL and LLM_MODEL to evaluate a model instead)';
}

export interface Materials {
  studentToken: string;
  /** The course of each material ingested. */
  courses: Partial<Record<MaterialKey, string>>;
}

/**
 * One course per material, its document ingested through the API (upload, then ingestDocument,
 * then the task followed to COMPLETED), and one student enrolled in all of them.
 */
export async function prepareMaterials(
  stack: TestStack,
  materials: readonly MaterialKey[],
  log: (line: string) => void = () => {},
): Promise<Materials> {
  const teacher = stack.user('eval-teacher');
  const student = stack.user('eval-student');
  const teacherToken = await stack.token(teacher, 'TEACHER');
  const studentToken = await stack.token(student, 'STUDENT');
  const courses: Materials['courses'] = {};
  await Promise.all(
    materials.map(async (key) => {
      const generated = GENERATED.find((d) => d.key === key);
      const title = generated?.title ?? TRACEMONKEY.title;
      const pdf = generated
        ? await makeTextPdf(generated.pages, { title: generated.title, headings: generated.headings })
        : await readFile(TRACEMONKEY_PATH);
      const courseId = await createCourse(stack, teacherToken, `eval:tutor ${key}`);
      const added = await stack.gql(
        'mutation($c: ID!, $u: ID!) { addCourseMember(courseId: $c, userId: $u, role: STUDENT) { userId } }',
        { c: courseId, u: student },
        { token: teacherToken },
      );
      if (added.body.errors) throw new Error(`enrolling the student: ${JSON.stringify(added.body.errors)}`);
      // The test profile's queues are shared by every stack running on this machine: another
      // stack's worker can take the job and not find the upload in its own blob store. Such a
      // document fails; it is uploaded and ingested again.
      for (let attempt = 1; ; attempt++) {
        const up = await upload(stack, teacherToken, pdf, `${key}.pdf`);
        if (!up.body.uploadId) throw new Error(`uploading ${key}.pdf: ${up.status} ${JSON.stringify(up.body)}`);
        const task = await ingest(stack, teacherToken, { courseId, title, uploadId: up.body.uploadId });
        const done = await waitForTask(stack, teacherToken, task.id, 300_000);
        if (done.status === 'COMPLETED') {
          log(`  ingested ${key}: ${done.document?.pages} pages, ${done.document?.chunkCount} chunks`);
          break;
        }
        if (attempt >= MAX_ATTEMPTS) throw new Error(`ingesting ${key} ended ${done.status}: ${JSON.stringify(done.error)}`);
        log(`  ingesting ${key} ended ${done.status} (${done.error?.code}); again`);
        if (done.document) await deleteDocument(stack, teacherToken, done.document.id);
      }
      courses[key] = courseId;
    }),
  );
  return { studentToken, courses };
}

/** Attempts at ingesting a document, and at getting an answer written by this stack's worker. */
const MAX_ATTEMPTS = 3;

async function deleteDocument(stack: TestStack, token: string, id: string) {
  await stack.gql('mutation($id: ID!) { deleteDocument(id: $id) }', { id }, { token });
}

/**
 * Whether one of this stack's workers wrote the answer (it logs "answer written" with the
 * message's id). Another stack sharing the test profile's queue may have taken the job, with its
 * own settings and the code it started with: such an answer says nothing about this run.
 */
async function writtenHere(stack: TestStack, messageId: string): Promise<boolean> {
  const needle = `"messageId":"${messageId}"`;
  const workers = Object.values(stack.services).filter((s) => s.name.startsWith('worker'));
  for (let i = 0; i < 20; i++) {
    if (workers.some((w) => w.lines.some((l) => l.includes(needle) && l.includes('"answer written"')))) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

const ANSWER_FIELDS = 'id status mode content grounded engine citations { index pageStart pageEnd quote } conversation { id }';

/** Asks one question and waits for its final message on `answerStream`; the time is from the request to the DONE event. */
export async function askFinal(
  stack: TestStack,
  token: string,
  input: { courseId: string; question: string; conversationId?: string; mode?: 'EXPLAIN' | 'SOCRATIC' },
  timeoutMs = 60_000,
): Promise<{ answer: AnswerView; latencyMs: number }> {
  const t0 = performance.now();
  const asked = await stack.gql<{ askTutor: { id: string } }>(
    'mutation($i: AskTutorInput!) { askTutor(input: $i) { id } }',
    { i: input },
    { token },
  );
  const id = asked.body.data?.askTutor.id;
  if (!id) throw new Error(`askTutor: ${JSON.stringify(asked.body.errors)}`);
  type Event = { answerStream: { type: string; message: AnswerView | null } };
  const sub = subscribe<Event>(
    stack.routerUrl,
    token,
    `subscription($id: ID!) { answerStream(messageId: $id) { type message { ${ANSWER_FIELDS} } } }`,
    {
      id,
    },
  );
  try {
    const done = await sub.until((e) => e.answerStream.type === 'DONE', timeoutMs);
    const latencyMs = performance.now() - t0;
    return { answer: done.answerStream.message!, latencyMs };
  } finally {
    await sub.dispose();
  }
}

/**
 * Asks each question (a follow-up after its `previous` question, in the same conversation;
 * a socratic question in SOCRATIC mode), one at a time, and scores the answers. Questions
 * whose material has no course are left out.
 */
export async function runQuestions(
  stack: TestStack,
  materials: Materials,
  questions: readonly EvalQuestion[],
  opts: { onResult?: (r: Result) => void } = {},
): Promise<{ results: Result[]; latencies: number[] }> {
  const results: Result[] = [];
  const latencies: number[] = [];
  for (const q of questions) {
    const courseId = materials.courses[q.material];
    if (!courseId) continue;
    for (let attempt = 1; ; attempt++) {
      const times: number[] = [];
      let previous: AnswerView | undefined;
      let here = true;
      if (q.kind === 'follow-up' && q.previous) {
        const first = await askFinal(stack, materials.studentToken, { courseId, question: q.previous });
        previous = first.answer;
        times.push(first.latencyMs);
        here = await writtenHere(stack, first.answer.id);
      }
      const { answer, latencyMs } = await askFinal(stack, materials.studentToken, {
        courseId,
        question: q.question,
        mode: q.kind === 'socratic' ? 'SOCRATIC' : 'EXPLAIN',
        ...(previous ? { conversationId: previous.conversation.id } : {}),
      });
      times.push(latencyMs);
      here = here && (await writtenHere(stack, answer.id));
      if (!here && attempt < MAX_ATTEMPTS) continue;
      if (!here) throw new Error(`${q.id}: answered by another stack's worker ${MAX_ATTEMPTS} times (the test profile's queue is shared)`);
      latencies.push(...times);
      const result: Result = {
        question: q,
        half: halfOf(q),
        answer,
        ...(previous ? { previous } : {}),
        score: scoreAnswer(q, answer),
        latencyMs,
      };
      results.push(result);
      opts.onResult?.(result);
      break;
    }
  }
  return { results, latencies };
}
