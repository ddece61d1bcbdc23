import pg from 'pg';
import { COURSE_PASSAGES } from '../../lib/exam/fixtures/course.js';
import { makeTextPdf } from './pdf-fixtures.js';
import { createCourse, ingest, upload, waitForTask } from './ingest.js';
import { testInfra } from './infra.js';
import type { GraphQLResponse, TestStack } from './stack.js';

/**
 * Points this process's stacks at a Redis database of their own (8 to 15, drawn at random): the
 * test profile's Redis is shared with other test runs, whose workers would otherwise take this
 * file's jobs (with their own settings) and this file's workers theirs. Returns the undo.
 */
export function ownRedisDatabase(): () => void {
  const before = process.env['REDIS_URL'];
  const base = testInfra().REDIS_URL.replace(/\/\d+$/, '');
  process.env['REDIS_URL'] = `${base}/${8 + Math.floor(Math.random() * 8)}`;
  return () => {
    if (before === undefined) delete process.env['REDIS_URL'];
    else process.env['REDIS_URL'] = before;
  };
}

/** The pages of lib/exam's test course (history and biology), one passage a page, headings apart. */
function pagesOf(prefix: string) {
  const passages = COURSE_PASSAGES.filter((p) => p.chunkId.startsWith(prefix) && !/Table \d/.test(p.text));
  return {
    headings: passages.map((p) => /^# (.+)$/m.exec(p.text)?.[1] ?? null),
    pages: passages.map((p) =>
      p.text
        .replace(/^# .+$/m, '')
        .split(/\n{2,}/)
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  };
}
export const HISTORY = { title: 'Modern European History', ...pagesOf('h') };
export const BIOLOGY = { title: 'Cell Biology Basics', ...pagesOf('b') };

export const TASK_EXAM_FIELDS = 'id kind status progress message attempts error { code message } exam { id status questionCount }';

export interface ExamTaskView {
  id: string;
  kind: string;
  status: string;
  progress: number;
  message: string | null;
  attempts: number;
  error: { code: string; message: string } | null;
  exam: { id: string; status: string; questionCount: number } | null;
}

export const QUESTION_FIELDS = `id position type stem options answerIndex answerBool answerText acceptedAnswers keyTerms explanation origin
  source { chunkId document { id } documentTitle pageStart pageEnd page pageExact sentence }`;

export interface QuestionView {
  id: string;
  position: number;
  type: 'MULTIPLE_CHOICE' | 'TRUE_FALSE' | 'SHORT_ANSWER' | 'FILL_IN_THE_BLANK';
  stem: string;
  options: string[];
  answerIndex: number | null;
  answerBool: boolean | null;
  answerText: string | null;
  acceptedAnswers: string[] | null;
  keyTerms: string[] | null;
  explanation: string | null;
  origin: string;
  source: {
    chunkId: string;
    document: { id: string };
    documentTitle: string;
    pageStart: number;
    pageEnd: number;
    page: number;
    pageExact: boolean;
    sentence: string | null;
  } | null;
}

export const EXAM_FIELDS = `id title status publishedAt questionCount timeLimitMinutes attemptsAllowed showAnswers closesAt
  error { code message }
  generation { engine model requested made types difficulty seed passages candidates note modelCalls repairs cachedCalls
    rejected { rule count } usage { promptTokens completionTokens } task { id } documents { id } }
  questions { ${QUESTION_FIELDS} }`;

export interface ExamView {
  id: string;
  title: string;
  status: string;
  publishedAt: string | null;
  questionCount: number;
  timeLimitMinutes: number | null;
  attemptsAllowed: number | null;
  showAnswers: string;
  closesAt: string | null;
  error: { code: string; message: string } | null;
  generation: {
    engine: string | null;
    model: string | null;
    requested: number;
    made: number | null;
    types: string[];
    difficulty: string;
    seed: number;
    passages: number | null;
    candidates: number | null;
    note: string | null;
    modelCalls: number | null;
    repairs: number | null;
    cachedCalls: number | null;
    rejected: { rule: string; count: number }[];
    usage: { promptTokens: number; completionTokens: number } | null;
    task: { id: string } | null;
    documents: { id: string }[];
  } | null;
  questions: QuestionView[] | null;
}

/** A teacher's course with the history and biology PDFs ingested, and `students` students enrolled. */
export async function examCourse(stack: TestStack, opts: { students?: number; biology?: boolean; prefix?: string } = {}) {
  const prefix = opts.prefix ?? 'exam';
  const teacher = stack.user(`${prefix}-teacher`);
  const teacherToken = await stack.token(teacher, 'TEACHER');
  const courseId = await createCourse(stack, teacherToken, 'Exams course');
  const students: { id: string; token: string }[] = [];
  for (let i = 0; i < (opts.students ?? 1); i++) {
    const id = stack.user(`${prefix}-student-${i}`);
    const add = await stack.gql(
      'mutation($c: ID!, $u: ID!) { addCourseMember(courseId: $c, userId: $u, role: STUDENT) { userId } }',
      { c: courseId, u: id },
      { token: teacherToken },
    );
    if (add.body.errors) throw new Error(JSON.stringify(add.body.errors));
    students.push({ id, token: await stack.token(id, 'STUDENT') });
  }
  const documents: Record<string, string> = {};
  for (const doc of opts.biology === false ? [HISTORY] : [HISTORY, BIOLOGY]) {
    const pdf = await makeTextPdf(doc.pages, { title: doc.title, headings: doc.headings });
    const up = await upload(stack, teacherToken, pdf, `${doc.title}.pdf`);
    const task = await ingest(stack, teacherToken, { courseId, title: doc.title, uploadId: up.body.uploadId });
    const done = await waitForTask(stack, teacherToken, task.id);
    if (done.status !== 'COMPLETED') throw new Error(`fixture ingestion ended ${done.status}: ${JSON.stringify(done.error)}`);
    documents[doc.title] = done.document!.id;
  }
  return { courseId, teacher, teacherToken, students, documents };
}

export function gqlAs(stack: TestStack, token: string) {
  return async <T = Record<string, unknown>>(query: string, variables: Record<string, unknown> = {}): Promise<GraphQLResponse<T>> =>
    stack.gql<T>(query, variables, { token });
}

/** The data of a response, or a throw with its errors. */
export function data<T>(res: GraphQLResponse<T>): T {
  if (res.body.errors?.length || !res.body.data) throw new Error(JSON.stringify(res.body.errors ?? res.body));
  return res.body.data;
}

/** The first error's code and field (extensions), for refusals. */
export function refusal(res: GraphQLResponse<unknown>) {
  const e = res.body.errors?.[0];
  return { code: e?.extensions?.['code'], field: e?.extensions?.['field'], reason: e?.extensions?.['reason'], message: e?.message };
}

export async function generate(stack: TestStack, token: string, input: Record<string, unknown>): Promise<ExamTaskView> {
  const res = await stack.gql<{ generateExam: ExamTaskView }>(
    `mutation($i: GenerateExamInput!) { generateExam(input: $i) { ${TASK_EXAM_FIELDS} } }`,
    { i: input },
    { token },
  );
  return data(res).generateExam;
}

export async function examTask(stack: TestStack, token: string, id: string): Promise<ExamTaskView> {
  return data(await stack.gql<{ task: ExamTaskView }>(`query($id: ID!) { task(id: $id) { ${TASK_EXAM_FIELDS} } }`, { id }, { token })).task;
}

/** Polls until the task reaches a final status. */
export async function waitForExamTask(stack: TestStack, token: string, id: string, timeoutMs = 120_000): Promise<ExamTaskView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const task = await examTask(stack, token, id);
    if (['COMPLETED', 'FAILED', 'CANCELLED'].includes(task.status)) return task;
    if (Date.now() > deadline) throw new Error(`task ${id} still ${task.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function getExam(stack: TestStack, token: string, id: string, fields = EXAM_FIELDS) {
  return stack.gql<{ exam: ExamView }>(`query($id: ID!) { exam(id: $id) { ${fields} } }`, { id }, { token });
}

/** Generates and waits: the completed task and the exam as its teacher sees it. */
export async function generateAndWait(stack: TestStack, token: string, input: Record<string, unknown>) {
  const task = await generate(stack, token, input);
  const done = await waitForExamTask(stack, token, task.id);
  if (done.status !== 'COMPLETED') throw new Error(`generation ended ${done.status}: ${JSON.stringify(done.error)}`);
  const exam = data(await getExam(stack, token, done.exam!.id)).exam;
  return { task: done, exam };
}

export async function publish(stack: TestStack, token: string, id: string, settings: Record<string, unknown> = {}) {
  if (Object.keys(settings).length)
    data(
      await stack.gql(
        'mutation($id: ID!, $s: ExamSettingsInput!) { updateExamSettings(id: $id, input: $s) { id } }',
        { id, s: settings },
        { token },
      ),
    );
  return data(
    await stack.gql<{ publishExam: { status: string } }>('mutation($id: ID!) { publishExam(id: $id) { status } }', { id }, { token }),
  ).publishExam;
}

/** SQL straight against PostgreSQL (for what a test must arrange or check behind the API's back). */
export async function sql<T extends pg.QueryResultRow = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: testInfra().DIRECT_DATABASE_URL });
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

/** The stored text of a chunk. */
export async function chunkText(
  chunkId: string,
): Promise<{ text: string; pageStart: number; pageEnd: number; documentId: string } | undefined> {
  return (
    await sql<{ text: string; pageStart: number; pageEnd: number; documentId: string }>(
      'SELECT text, "pageStart", "pageEnd", "documentId" FROM "Chunk" WHERE id = $1',
      [chunkId],
    )
  )[0];
}

/** SQL queries a subgraph has sent, from its /metrics. */
export async function dbQueries(stack: TestStack, subgraph: string): Promise<number> {
  const text = await (await fetch(stack.services[subgraph]!.url.replace('/graphql', '/metrics'))).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('db_queries_total'))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

/** The answer a question's key calls for (as the teacher sees the key), or a wrong one. */
export function answerFor(q: QuestionView, right: boolean): Record<string, unknown> {
  switch (q.type) {
    case 'MULTIPLE_CHOICE':
      return { choice: right ? q.answerIndex! : (q.answerIndex! + 1) % 4 };
    case 'TRUE_FALSE':
      return { truth: right ? q.answerBool! : !q.answerBool! };
    case 'FILL_IN_THE_BLANK':
      return { text: right ? q.answerText!.toUpperCase() : 'quixotic zebra' };
    default:
      return { text: right ? q.answerText! : 'I do not remember anything about it.' };
  }
}

export const ATTEMPT_FIELDS = `id number status startedAt deadline secondsLeft submittedAt autoSubmitted score maxScore answersShown
  questions { id position type stem options }
  answers { question { id type } choice truth text correct score feedback }`;

export interface AttemptView {
  id: string;
  number: number;
  status: string;
  startedAt: string;
  deadline: string | null;
  secondsLeft: number | null;
  submittedAt: string | null;
  autoSubmitted: boolean;
  score: number | null;
  maxScore: number | null;
  answersShown: boolean;
  questions: { id: string; position: number; type: string; stem: string; options: string[] }[];
  answers: {
    question: { id: string; type: string };
    choice: number | null;
    truth: boolean | null;
    text: string | null;
    correct: boolean | null;
    score: number | null;
    feedback: string | null;
  }[];
}

export async function startAttempt(stack: TestStack, token: string, examId: string) {
  return stack.gql<{ startAttempt: AttemptView }>(
    `mutation($e: ID!) { startAttempt(examId: $e) { ${ATTEMPT_FIELDS} } }`,
    { e: examId },
    { token },
  );
}

export async function answer(stack: TestStack, token: string, attemptId: string, questionId: string, value: Record<string, unknown>) {
  return stack.gql<{ answerQuestion: { choice: number | null; truth: boolean | null; text: string | null; correct: boolean | null } }>(
    'mutation($a: ID!, $q: ID!, $v: AnswerInput!) { answerQuestion(attemptId: $a, questionId: $q, answer: $v) { choice truth text correct } }',
    { a: attemptId, q: questionId, v: value },
    { token },
  );
}

export async function submit(stack: TestStack, token: string, attemptId: string) {
  return stack.gql<{ submitAttempt: AttemptView }>(
    `mutation($a: ID!) { submitAttempt(attemptId: $a) { ${ATTEMPT_FIELDS} } }`,
    { a: attemptId },
    { token },
  );
}

// A model that writes exam questions the way lib/exam's validator wants them (for the model engine's tests).

export interface PromptPassage {
  n: number;
  text: string;
}

/** The passages, count and types an exam prompt asks about, as the model sees them. */
export function readPrompt(request: { messages: { role: string; content: string }[] }) {
  const user = request.messages.find((m) => m.role === 'user')?.content ?? '';
  const passages: PromptPassage[] = [...user.matchAll(/<passage-([0-9a-f]{8}) n="(\d+)"[^>]*>\n([\s\S]*?)\n<\/passage-\1>/g)].map((m) => ({
    n: Number(m[2]),
    text: m[3]!,
  }));
  const count = Number(/Write (\d+) questions of these types/.exec(user)?.[1] ?? 0);
  const types = (/mixed as evenly as possible: ([A-Z_, ]+)\./.exec(user)?.[1] ?? '').split(', ');
  const last = request.messages[request.messages.length - 1]!;
  const repair = request.messages.length > 2 ? last.content : null;
  const redo = repair ? Number(/(?:Write|holding) (\d+)/.exec(repair)?.[1] ?? 0) : 0;
  return { passages, count: repair ? redo : count, types, repair };
}

/** Sentences of a passage with exactly one year in them, whitespace collapsed. */
function yearSentences(p: PromptPassage) {
  return p.text
    .replace(/\s+/g, ' ')
    .split(/(?<=\.)\s+/)
    .map((s) => s.trim())
    .filter((s) => (s.match(/\b1\d{3}\b/g) ?? []).length === 1 && /^[A-Z]/.test(s) && s.split(' ').length >= 6);
}

/** A question a careful model writes from a sentence with a year: valid by lib/exam's rules. */
function question(type: string, n: number, sentence: string) {
  const year = /\b1\d{3}\b/.exec(sentence)![0];
  const blanked = sentence.replace(year, '_____');
  const base = {
    options: null,
    answerIndex: null,
    answerText: null,
    answerBool: null,
    keyTerms: null,
    passage: n,
    sourceSentence: sentence,
  };
  const explanation = `The passage says: ${sentence}`;
  switch (type) {
    case 'MULTIPLE_CHOICE': {
      const y = Number(year);
      const distractors = [y - 7, y + 4, y + 13].map(String).filter((d) => !sentence.includes(d));
      return { ...base, type, stem: blanked, options: [year, ...distractors.slice(0, 3)], answerIndex: 0, explanation };
    }
    case 'TRUE_FALSE':
      return { ...base, type, stem: `True or false: ${sentence}`, answerBool: true, explanation };
    case 'FILL_IN_THE_BLANK':
      return { ...base, type, stem: blanked, answerText: year, explanation };
    default:
      return {
        ...base,
        type: 'SHORT_ANSWER',
        stem: `When did this happen: ${blanked}`,
        answerText: sentence,
        keyTerms: [year],
        explanation,
      };
  }
}

/** A model that writes valid questions from sentences it has not used yet (in this test run). */
export function carefulModel(used: Set<string>) {
  return (request: { messages: { role: string; content: string }[] }, opts: { invalid?: number } = {}): string => {
    const { passages, count, types } = readPrompt(request);
    const out: unknown[] = [];
    for (const p of passages) {
      for (const sentence of yearSentences(p)) {
        if (out.length >= count || used.has(sentence)) continue;
        used.add(sentence);
        const q = question(types[out.length % types.length]!, p.n, sentence);
        // The first `invalid` questions cite a sentence the passage does not have.
        out.push(out.length < (opts.invalid ?? 0) ? { ...q, sourceSentence: 'This sentence is in no passage at all.' } : q);
      }
    }
    return JSON.stringify({ questions: out });
  };
}
