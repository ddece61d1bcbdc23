import { makeTextPdf } from './pdf-fixtures.js';
import { createCourse, ingest, upload, waitForTask } from './ingest.js';
import type { TestStack } from './stack.js';

/** A course whose facts sit on known pages: what the tutor tests ask about. */
export const FACT_PAGES: string[][] = [
  [
    'Welcome to General Science. These notes cover a little engineering history, plant biology and mechanics.',
    'Read each chapter before the lesson and bring your questions.',
  ],
  [
    'The Eiffel Tower was completed in 1889 for the World Fair held in Paris.',
    'It was designed and built by the engineering company of Gustave Eiffel.',
    'The tower is 330 metres tall, including the antennas at its top.',
  ],
  [
    'Photosynthesis converts light energy into chemical energy stored in glucose.',
    'It takes place in the chloroplasts of plant cells.',
    'The pigment chlorophyll absorbs mostly blue and red light and reflects green light.',
  ],
  [
    "Newton's second law states that the net force on a body equals its mass times its acceleration.",
    'The unit of force is the newton, named after Isaac Newton.',
    'A force of one newton accelerates a mass of one kilogram at one metre per second squared.',
  ],
];
export const FACT_HEADINGS = ['Introduction', 'Engineering history', 'Plant biology', 'Mechanics'];

export const MESSAGE_FIELDS = `id role content status mode grounded engine model cached
  usage { promptTokens completionTokens } error { code message }
  citations { index chunkId pageStart pageEnd quote document { id } }
  conversation { id title }`;

export interface MessageView {
  id: string;
  role: string;
  content: string;
  status: string;
  mode: string;
  grounded: boolean | null;
  engine: string | null;
  model: string | null;
  cached: boolean;
  usage: { promptTokens: number; completionTokens: number } | null;
  error: { code: string; message: string } | null;
  citations: { index: number; chunkId: string; pageStart: number; pageEnd: number; quote: string; document: { id: string } }[];
  conversation: { id: string; title: string };
}

/** A teacher's course with the fact PDF ingested, and a student enrolled. */
export async function factCourse(stack: TestStack, extraText?: { title: string; text: string }) {
  const teacher = stack.user('teacher');
  const student = stack.user('student');
  const teacherToken = await stack.token(teacher, 'TEACHER');
  const studentToken = await stack.token(student, 'STUDENT');
  const courseId = await createCourse(stack, teacherToken, 'General Science');
  const add = await stack.gql(
    'mutation($c: ID!, $u: ID!) { addCourseMember(courseId: $c, userId: $u, role: STUDENT) { userId } }',
    { c: courseId, u: student },
    { token: teacherToken },
  );
  if (add.body.errors) throw new Error(JSON.stringify(add.body.errors));
  const pdf = await makeTextPdf(FACT_PAGES, { title: 'Science notes', headings: FACT_HEADINGS });
  const up = await upload(stack, teacherToken, pdf, 'science-notes.pdf');
  const task = await ingest(stack, teacherToken, { courseId, title: 'Science notes', uploadId: up.body.uploadId });
  const done = await waitForTask(stack, teacherToken, task.id);
  if (done.status !== 'COMPLETED') throw new Error(`fixture ingestion ended ${done.status}: ${JSON.stringify(done.error)}`);
  let extraDocumentId: string | undefined;
  if (extraText) {
    const t = await ingest(stack, teacherToken, { courseId, title: extraText.title, text: extraText.text, format: 'TEXT' });
    const d = await waitForTask(stack, teacherToken, t.id);
    if (d.status !== 'COMPLETED') throw new Error(`extra ingestion ended ${d.status}`);
    extraDocumentId = d.document?.id;
  }
  return { courseId, documentId: done.document!.id, extraDocumentId, teacher, student, teacherToken, studentToken };
}

export async function ask(
  stack: TestStack,
  token: string,
  input: { courseId: string; question: string; conversationId?: string; mode?: string; documentIds?: string[] },
) {
  return stack.gql<{ askTutor: MessageView }>(
    `mutation($i: AskTutorInput!) { askTutor(input: $i) { ${MESSAGE_FIELDS} } }`,
    { i: input },
    { token },
  );
}

export async function getMessage(stack: TestStack, token: string, id: string) {
  return stack.gql<{ message: MessageView }>(`query($id: ID!) { message(id: $id) { ${MESSAGE_FIELDS} } }`, { id }, { token });
}

/** Polls until the answer leaves GENERATING. */
export async function waitForAnswer(stack: TestStack, token: string, id: string, timeoutMs = 30_000): Promise<MessageView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await getMessage(stack, token, id);
    const message = res.body.data?.message;
    if (!message) throw new Error(`message ${id}: ${JSON.stringify(res.body.errors)}`);
    if (message.status !== 'GENERATING') return message;
    if (Date.now() > deadline) throw new Error(`answer ${id} still GENERATING after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Asks and waits for the answer to be final. */
export async function askAndWait(stack: TestStack, token: string, input: Parameters<typeof ask>[2]) {
  const res = await ask(stack, token, input);
  if (res.body.errors) throw new Error(JSON.stringify(res.body.errors));
  return waitForAnswer(stack, token, res.body.data!.askTutor.id);
}
