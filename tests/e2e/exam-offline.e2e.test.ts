import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { COURSE_PASSAGES } from '../../lib/exam/fixtures/course.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { escapeGift, toGift, toMoodleXml, toQti, type ExamQuestionDraft } from '../../lib/exam/index.js';
import { unzipFiles } from '../../subgraphs/exam/src/zip.js';
import {
  chunkText,
  data,
  gqlAs,
  QUESTION_FIELDS,
  sql,
  type ExamView,
  examCourse,
  generate,
  generateAndWait,
  getExam,
  refusal,
  TASK_EXAM_FIELDS,
  waitForExamTask,
  type ExamTaskView,
  type QuestionView,
  ownRedisDatabase,
} from '../support/exam.js';
import { createCourse, ingest, waitForTask } from '../support/ingest.js';
import { subscribe } from '../support/ws.js';

const ALL_TYPES = ['MULTIPLE_CHOICE', 'TRUE_FALSE', 'SHORT_ANSWER', 'FILL_IN_THE_BLANK'];
const MATERIAL = COURSE_PASSAGES.map((p) => p.text).join(' ');

/** Checks a question carries its whole source and that the source is what the database holds. */
async function expectTraceable(q: QuestionView, documents: Record<string, string>) {
  expect(q.explanation?.length).toBeGreaterThan(0);
  const s = q.source!;
  expect(Object.values(documents)).toContain(s.document.id);
  expect(s.chunkId.startsWith(`${s.document.id}:`)).toBe(true);
  const chunk = await chunkText(s.chunkId);
  expect(chunk).toBeDefined();
  expect(chunk!.documentId).toBe(s.document.id);
  // The sentence is verbatim in its passage, on the page the passage is on.
  expect(chunk!.text.replace(/\s+/g, ' ')).toContain(s.sentence!.replace(/\s+/g, ' '));
  expect([s.pageStart, s.pageEnd]).toEqual([chunk!.pageStart, chunk!.pageEnd]);
  expect(s.page).toBe(chunk!.pageStart);
  expect(s.pageExact).toBe(true);
  expect(MATERIAL.replace(/\s+/g, ' ')).toContain(s.sentence!.replace(/\s+/g, ' '));
}

/** Offline generation end to end: a GENERATE_EXAM task run by a real worker over ingested PDFs. */
describe('exam generation, offline engine', () => {
  let stack: TestStack;
  let course: Awaited<ReturnType<typeof examCourse>>;

  let restoreRedis = () => {};

  beforeAll(async () => {
    restoreRedis = ownRedisDatabase();
    stack = await startTestStack({
      router: { RATE_LIMIT_TEACHER: '1000000', RATE_LIMIT_STUDENT: '1000000' },
      worker: { EXAM_MAX_PASSAGES: '3000' },
    });
    course = await examCourse(stack);
  });
  afterAll(async () => {
    await stack?.stop();
    restoreRedis();
  });

  it('returns the task at once, streams "Writing question k of n", and completes with a traceable exam', async () => {
    // Listening before the mutation: every change of the task is heard.
    const mine = subscribe<{ myTaskUpdated: ExamTaskView }>(
      stack.routerUrl,
      course.teacherToken,
      `subscription { myTaskUpdated { ${TASK_EXAM_FIELDS} } }`,
    );
    await new Promise((r) => setTimeout(r, 500));
    const task = await generate(stack, course.teacherToken, {
      courseId: course.courseId,
      title: 'Midterm',
      questionCount: 12,
      types: ALL_TYPES,
      seed: 42,
    });
    expect(task.kind).toBe('GENERATE_EXAM');
    expect(['ACCEPTED', 'RUNNING']).toContain(task.status);
    expect(task.exam?.status).toBe('GENERATING');

    // taskUpdated: the current state first, then each change, until the end.
    const watch = subscribe<{ taskUpdated: ExamTaskView }>(
      stack.routerUrl,
      course.teacherToken,
      `subscription($id: ID!) { taskUpdated(id: $id) { ${TASK_EXAM_FIELDS} } }`,
      { id: task.id },
    );
    await watch.done;
    const last = watch.messages[watch.messages.length - 1]!.data!.taskUpdated;
    expect(last.status).toBe('COMPLETED');
    expect(last.message).toBe('Made 12 questions');
    expect(last.exam).toMatchObject({ status: 'DRAFT', questionCount: 12 });
    await watch.dispose();

    await mine.until((d) => d.myTaskUpdated.id === task.id && d.myTaskUpdated.status === 'COMPLETED');
    const events = mine.messages.map((m) => m.data!.myTaskUpdated).filter((t) => t.id === task.id);
    await mine.dispose();
    // Progress went up, in the words a teacher reads.
    const writing = events.map((e) => e.message ?? '').flatMap((m) => /^Writing question (\d+) of 12$/.exec(m)?.[1] ?? []);
    expect(writing.length).toBeGreaterThan(0);
    expect(writing.map(Number)).toEqual([...writing.map(Number)].sort((a, b) => a - b));
    const progress = events.map((e) => e.progress);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
    expect(events[events.length - 1]!.status).toBe('COMPLETED');

    const exam = data(await getExam(stack, course.teacherToken, last.exam!.id)).exam;
    expect(exam.title).toBe('Midterm');
    expect(exam.generation).toMatchObject({ engine: 'OFFLINE', requested: 12, made: 12, seed: 42, types: ALL_TYPES, difficulty: 'MEDIUM' });
    expect(exam.generation!.task!.id).toBe(task.id);
    expect(exam.generation!.passages).toBeGreaterThan(8);
    expect(exam.questions).toHaveLength(12);
    expect(exam.questions!.map((q) => q.position)).toEqual([...Array(12).keys()]);
    expect(new Set(exam.questions!.map((q) => q.type))).toEqual(new Set(ALL_TYPES));
    for (const q of exam.questions!) {
      await expectTraceable(q, course.documents);
      if (q.type === 'MULTIPLE_CHOICE') {
        expect(q.options).toHaveLength(4);
        expect(q.answerIndex).toBeGreaterThanOrEqual(0);
        expect(q.source!.sentence).toContain(q.options[q.answerIndex!]!.replace(/\s+/g, ' ').split(' ')[0]);
      }
      if (q.type === 'TRUE_FALSE') expect(typeof q.answerBool).toBe('boolean');
      if (q.type === 'FILL_IN_THE_BLANK') expect(q.stem).toContain('_____');
      if (q.type === 'SHORT_ANSWER') expect(q.keyTerms!.length).toBeGreaterThan(0);
    }
  }, 180_000);

  it('is reproducible: the same seed over the same material makes the same exam', async () => {
    const input = {
      courseId: course.courseId,
      title: 'Seeded',
      questionCount: 6,
      types: ['MULTIPLE_CHOICE', 'FILL_IN_THE_BLANK'],
      seed: 7,
    };
    const a = await generateAndWait(stack, course.teacherToken, input);
    const b = await generateAndWait(stack, course.teacherToken, input);
    const strip = (qs: QuestionView[]) => qs.map(({ id: _id, ...rest }) => rest);
    expect(strip(b.exam.questions!)).toEqual(strip(a.exam.questions!));
    const c = await generateAndWait(stack, course.teacherToken, { ...input, seed: 8 });
    expect(strip(c.exam.questions!)).not.toEqual(strip(a.exam.questions!));
  }, 180_000);

  it('never pads: asked for more than the material holds, it completes with what it made and says why', async () => {
    const { task, exam } = await generateAndWait(stack, course.teacherToken, {
      courseId: course.courseId,
      title: 'Too many',
      documentIds: [course.documents['Modern European History']],
      questionCount: 50,
      types: ALL_TYPES,
      seed: 3,
    });
    const made = exam.questions!.length;
    expect(made).toBeGreaterThan(0);
    expect(made).toBeLessThan(50);
    expect(task.message).toMatch(new RegExp(`^Made ${made} of 50 questions: the material ran out \\(${50 - made}\\)`));
    expect(exam.generation!.made).toBe(made);
    expect(exam.generation!.note).toBe(task.message);
    expect(exam.generation!.documents).toEqual([{ id: course.documents['Modern European History'] }]);
    expect(exam.generation!.rejected.find((r) => r.rule === 'material-exhausted')?.count).toBe(50 - made);
    // Only the selected document is drawn from.
    for (const q of exam.questions!) expect(q.source!.document.id).toBe(course.documents['Modern European History']);
  }, 180_000);

  it('fails with NOT_ENOUGH_MATERIAL when nothing can be made, and a retry after new material succeeds', async () => {
    const courseId = await createCourse(stack, course.teacherToken, 'Thin course');
    const junk = await ingest(stack, course.teacherToken, {
      courseId,
      title: 'Contents',
      text: '# Contents\n\nChapter 1\n\nChapter 2\n\nSee page 4\n\nIndex',
      format: 'MARKDOWN',
    });
    expect(await waitForTask(stack, course.teacherToken, junk.id)).toMatchObject({ status: 'COMPLETED' });
    const task = await generate(stack, course.teacherToken, { courseId, title: 'Nothing', questionCount: 5, types: ALL_TYPES });
    const failed = await waitForExamTask(stack, course.teacherToken, task.id);
    expect(failed.status).toBe('FAILED');
    expect(failed.error!.code).toBe('NOT_ENOUGH_MATERIAL');
    expect(failed.error!.message).toMatch(/^No question could be made from this material/);
    expect(failed.attempts).toBe(1); // not retried by the queue: it would fail the same way
    const exam = data(await getExam(stack, course.teacherToken, failed.exam!.id)).exam;
    expect(exam.status).toBe('FAILED');
    expect(exam.error).toEqual(failed.error);
    expect(exam.questions).toEqual([]);

    // New material; the same task, run again, draws from the whole course as it now is.
    const text = COURSE_PASSAGES.filter((p) => p.chunkId.startsWith('b'))
      .map((p) => p.text)
      .join('\n\n');
    const more = await ingest(stack, course.teacherToken, { courseId, title: 'Cells', text, format: 'MARKDOWN' });
    expect(await waitForTask(stack, course.teacherToken, more.id)).toMatchObject({ status: 'COMPLETED' });
    const retried = await stack.gql<{ retryTask: { status: string } }>(
      'mutation($id: ID!) { retryTask(id: $id) { status } }',
      { id: task.id },
      { token: course.teacherToken },
    );
    expect(data(retried).retryTask.status).toBe('ACCEPTED');
    const done = await waitForExamTask(stack, course.teacherToken, task.id);
    expect(done.status).toBe('COMPLETED');
    expect(done.exam).toMatchObject({ id: exam.id, status: 'DRAFT', questionCount: 5 });
    expect(data(await getExam(stack, course.teacherToken, exam.id)).exam.error).toBeNull();
  }, 180_000);

  it('cancels a running generation: the task ends CANCELLED, the exam FAILED with no questions', async () => {
    // A course large enough to keep the generator busy for a while.
    const courseId = await createCourse(stack, course.teacherToken, 'Big course');
    const text = Array.from({ length: 1500 }, (_, i) => {
      const p = COURSE_PASSAGES[i % COURSE_PASSAGES.length]!;
      return p.text.replace(/\b(1[5-9]\d\d)\b/g, (y) => String(Number(y) + (i % 40))).replace(/^# .*$/gm, '');
    }).join('\n\n');
    const big = await ingest(stack, course.teacherToken, { courseId, title: 'Big', text: text.slice(0, 900_000), format: 'TEXT' });
    expect(await waitForTask(stack, course.teacherToken, big.id, 180_000)).toMatchObject({ status: 'COMPLETED' });
    const task = await generate(stack, course.teacherToken, { courseId, title: 'Cancelled', questionCount: 40, types: ALL_TYPES });
    const deadline = Date.now() + 60_000;
    for (;;) {
      const t = (
        await stack.gql<{ task: ExamTaskView }>(
          `query($id: ID!) { task(id: $id) { ${TASK_EXAM_FIELDS} } }`,
          { id: task.id },
          { token: course.teacherToken },
        )
      ).body.data!.task;
      if (t.status === 'RUNNING' && /^Writing question/.test(t.message ?? '')) break;
      if (t.status !== 'ACCEPTED' && t.status !== 'RUNNING') throw new Error(`task ended ${t.status} before it could be cancelled`);
      if (Date.now() > deadline) throw new Error('the generation never started');
      await new Promise((r) => setTimeout(r, 100));
    }
    const cancelled = await stack.gql<{ cancelTask: { status: string } }>(
      'mutation($id: ID!) { cancelTask(id: $id) { status } }',
      { id: task.id },
      { token: course.teacherToken },
    );
    expect(data(cancelled).cancelTask.status).toBe('CANCELLED');
    const worker = stack.services['worker-1']!;
    const stopped = Date.now() + 30_000;
    while (!worker.lines.some((l) => l.includes(task.id) && l.includes('exam generation stopped'))) {
      if (Date.now() > stopped) throw new Error('the worker did not stop the generation');
      await new Promise((r) => setTimeout(r, 100));
    }
    const done = await waitForExamTask(stack, course.teacherToken, task.id);
    expect(done.status).toBe('CANCELLED');
    expect(done.exam).toMatchObject({ status: 'FAILED', questionCount: 0 });
    const exam = data(await getExam(stack, course.teacherToken, done.exam!.id)).exam;
    expect(exam.error?.code).toBe('CANCELLED');
    // Only failed tasks are retried; a cancelled one stays cancelled.
    const retry = await stack.gql('mutation($id: ID!) { retryTask(id: $id) { status } }', { id: task.id }, { token: course.teacherToken });
    expect(refusal(retry).code).toBe('CONFLICT');
  }, 300_000);

  it('checks its input and its caller, and returns the first task for a repeated idempotency key', async () => {
    const base = { courseId: course.courseId, title: 'Checked', questionCount: 3, types: ['TRUE_FALSE'] };
    const mutation = `mutation($i: GenerateExamInput!) { generateExam(input: $i) { id } }`;
    const asTeacher = (i: Record<string, unknown>) => stack.gql(mutation, { i }, { token: course.teacherToken });
    for (const [input, field] of [
      [{ ...base, questionCount: 0 }, 'questionCount'],
      [{ ...base, questionCount: 51 }, 'questionCount'],
      [{ ...base, types: [] }, 'types'],
      [{ ...base, title: ' ' }, 'title'],
      [{ ...base, documentIds: ['00000000-0000-4000-8000-000000000000'] }, 'documentIds'],
      [{ ...base, courseId: 'nope' }, 'courseId'],
    ] as const) {
      const res = await asTeacher(input);
      expect({ input: field, ...refusal(res) }).toMatchObject({ input: field, field, code: 'BAD_USER_INPUT' });
    }
    const student = await stack.token(stack.user('exam-outsider'), 'STUDENT');
    const outsider = await stack.gql(mutation, { i: base }, { token: student });
    expect(refusal(outsider).code).toBe('FORBIDDEN');

    const first = data(await asTeacher({ ...base, idempotencyKey: 'gen-1' })) as { generateExam: { id: string } };
    const again = data(await asTeacher({ ...base, idempotencyKey: 'gen-1' })) as { generateExam: { id: string } };
    expect(again.generateExam.id).toBe(first.generateExam.id);
    expect((await waitForExamTask(stack, course.teacherToken, first.generateExam.id)).status).toBe('COMPLETED');
  }, 180_000);

  describe('review by teachers', () => {
    let exam: ExamView;
    const q = (type: QuestionView['type']) => exam.questions!.find((x) => x.type === type)!;
    const teacher = () => gqlAs(stack, course.teacherToken);
    const reload = async () => (exam = data(await getExam(stack, course.teacherToken, exam.id)).exam);
    const UPDATE = `mutation($id: ID!, $i: QuestionPatch!) { updateQuestion(id: $id, input: $i) { ${QUESTION_FIELDS} } }`;

    beforeAll(async () => {
      ({ exam } = await generateAndWait(stack, course.teacherToken, {
        courseId: course.courseId,
        title: 'Review me',
        questionCount: 8,
        types: ALL_TYPES,
        seed: 11,
      }));
    }, 180_000);

    it('keeps drafts from students: the exam is NOT_FOUND and absent from the course', async () => {
      const student = gqlAs(stack, course.students[0]!.token);
      expect(refusal(await student(`query($id: ID!) { exam(id: $id) { id } }`, { id: exam.id })).code).toBe('NOT_FOUND');
      const listed = data(
        await student<{ course: { exams: { id: string }[] } }>(`query($c: ID!) { course(id: $c) { exams { id } } }`, {
          c: course.courseId,
        }),
      );
      expect(listed.course.exams.map((e) => e.id)).not.toContain(exam.id);
      const asTeacher = data(
        await teacher()<{ course: { exams: { id: string }[] } }>(`query($c: ID!) { course(id: $c) { exams { id } } }`, {
          c: course.courseId,
        }),
      );
      expect(asTeacher.course.exams.map((e) => e.id)).toContain(exam.id);
      // Nor can a student edit one.
      const edit = await student(UPDATE, { id: q('MULTIPLE_CHOICE').id, i: { stem: 'Hacked?' } });
      expect(['FORBIDDEN', 'NOT_FOUND']).toContain(refusal(edit).code);
    });

    it('validates edits like generated questions, naming the field that is wrong', async () => {
      const mc = q('MULTIPLE_CHOICE');
      const key = mc.options[mc.answerIndex!]!;
      const cases: [Record<string, unknown>, string][] = [
        [{ options: mc.options.slice(0, 3) }, 'options'],
        [{ options: [mc.options[0], mc.options[0], mc.options[2], mc.options[3]] }, 'options'],
        [{ answerIndex: 4 }, 'answerIndex'],
        [{ stem: '' }, 'stem'],
        [{ stem: `${mc.stem} (hint: ${key})` }, 'stem'],
        [{ explanation: ' ' }, 'explanation'],
        [{ source: { chunkId: mc.source!.chunkId, sentence: 'A sentence that is nowhere in the passage.' } }, 'source.sentence'],
        [{ source: { chunkId: 'not-a-chunk:0', sentence: mc.source!.sentence } }, 'source.chunkId'],
        [{ type: 'TRUE_FALSE' }, 'answerBool'],
      ];
      for (const [input, field] of cases) {
        const res = await teacher()(UPDATE, { id: mc.id, i: input });
        expect({ input, ...refusal(res) }).toMatchObject({ input, code: 'BAD_USER_INPUT', field });
      }
      const fib = q('FILL_IN_THE_BLANK');
      expect(refusal(await teacher()(UPDATE, { id: fib.id, i: { stem: fib.stem.replace('_____', '...') } }))).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'stem',
      });
      const sa = q('SHORT_ANSWER');
      expect(refusal(await teacher()(UPDATE, { id: sa.id, i: { keyTerms: ['photosynthetic zebras'] } }))).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'keyTerms',
      });
      // Nothing was changed by the refused edits.
      const before = exam.questions!;
      await reload();
      expect(exam.questions).toEqual(before);
    });

    it('applies a valid edit: reworded stem, options reordered with the key moved', async () => {
      const mc = q('MULTIPLE_CHOICE');
      const key = mc.options[mc.answerIndex!]!;
      const options = [...mc.options].reverse();
      const res = await teacher()<{ updateQuestion: QuestionView }>(UPDATE, {
        id: mc.id,
        i: { stem: `In the course's words: ${mc.stem}`, options, answerIndex: options.indexOf(key) },
      });
      const updated = data(res).updateQuestion;
      expect(updated.origin).toBe('EDITED');
      expect(updated.options).toEqual(options);
      expect(updated.options[updated.answerIndex!]).toBe(key);
      expect(updated.source).toEqual(mc.source);
      await reload();
    });

    it('adds a question from a sentence of the material, removes one and reorders them', async () => {
      const chunkId = `${course.documents['Modern European History']}:0`;
      const chunk = await chunkText(chunkId);
      const sentence = 'The French Revolution began in 1789 with the meeting of the Estates-General at Versailles.';
      expect(chunk!.text).toContain(sentence);
      const added = data(
        await teacher()<{ addQuestion: QuestionView }>(
          `mutation($e: ID!, $i: NewQuestionInput!) { addQuestion(examId: $e, input: $i, position: 0) { ${QUESTION_FIELDS} } }`,
          {
            e: exam.id,
            i: {
              type: 'TRUE_FALSE',
              stem: `True or false: ${sentence}`,
              answerBool: true,
              explanation: 'The course says so on page 1.',
              source: { chunkId, sentence },
            },
          },
        ),
      ).addQuestion;
      expect(added).toMatchObject({ position: 0, origin: 'ADDED', answerBool: true });
      expect(added.source).toMatchObject({
        chunkId,
        page: 1,
        pageExact: true,
        sentence,
        document: { id: course.documents['Modern European History'] },
      });
      await reload();
      expect(exam.questions!.map((x) => x.position)).toEqual([...Array(9).keys()]);
      expect(exam.questions![0]!.id).toBe(added.id);

      // A false statement needs a change the sentence contradicts; the same sentence marked false is refused.
      const wrong = await teacher()(`mutation($e: ID!, $i: NewQuestionInput!) { addQuestion(examId: $e, input: $i) { id } }`, {
        e: exam.id,
        i: { type: 'TRUE_FALSE', stem: sentence, answerBool: false, explanation: 'x', source: { chunkId, sentence } },
      });
      expect(refusal(wrong)).toMatchObject({ code: 'BAD_USER_INPUT', field: 'stem' });

      const removed = data(
        await teacher()<{ removeQuestion: { questionCount: number; questions: { id: string; position: number }[] } }>(
          `mutation($id: ID!) { removeQuestion(id: $id) { questionCount questions { id position } } }`,
          { id: exam.questions![3]!.id },
        ),
      ).removeQuestion;
      expect(removed.questionCount).toBe(8);
      expect(removed.questions.map((x) => x.position)).toEqual([...Array(8).keys()]);
      expect(removed.questions.map((x) => x.id)).not.toContain(exam.questions![3]!.id);

      const reversed = removed.questions.map((x) => x.id).reverse();
      const REORDER = `mutation($e: ID!, $ids: [ID!]!) { reorderQuestions(examId: $e, questionIds: $ids) { questions { id } } }`;
      const reordered = data(
        await teacher()<{ reorderQuestions: { questions: { id: string }[] } }>(REORDER, { e: exam.id, ids: reversed }),
      );
      expect(reordered.reorderQuestions.questions.map((x) => x.id)).toEqual(reversed);
      expect(refusal(await teacher()(REORDER, { e: exam.id, ids: reversed.slice(1) }))).toMatchObject({
        code: 'BAD_USER_INPUT',
        field: 'questionIds',
      });
      await reload();
    });

    it('regenerates a question in place, of the same type or another', async () => {
      const old = q('FILL_IN_THE_BLANK');
      const REGEN = `mutation($id: ID!, $t: QuestionType) { regenerateQuestion(id: $id, type: $t) { ${QUESTION_FIELDS} } }`;
      const fresh = data(await teacher()<{ regenerateQuestion: QuestionView }>(REGEN, { id: old.id })).regenerateQuestion;
      expect(fresh).toMatchObject({ id: old.id, position: old.position, type: 'FILL_IN_THE_BLANK', origin: 'REGENERATED' });
      expect(fresh.source!.sentence).not.toBe(old.source!.sentence);
      await expectTraceable(fresh, course.documents);
      const changed = data(
        await teacher()<{ regenerateQuestion: QuestionView }>(REGEN, { id: old.id, t: 'TRUE_FALSE' }),
      ).regenerateQuestion;
      expect(changed.type).toBe('TRUE_FALSE');
      expect(typeof changed.answerBool).toBe('boolean');
      await expectTraceable(changed, course.documents);
      await reload();
    });

    it('checks settings, publishes (then edits are refused), unpublishes, and deletes', async () => {
      const SETTINGS = `mutation($id: ID!, $s: ExamSettingsInput!) { updateExamSettings(id: $id, input: $s) { timeLimitMinutes attemptsAllowed showAnswers closesAt title } }`;
      for (const [s, field] of [
        [{ timeLimitMinutes: 0 }, 'timeLimitMinutes'],
        [{ attemptsAllowed: 101 }, 'attemptsAllowed'],
        [{ title: '' }, 'title'],
      ] as const) {
        expect(refusal(await teacher()(SETTINGS, { id: exam.id, s }))).toMatchObject({ code: 'BAD_USER_INPUT', field });
      }
      const closesAt = new Date(Date.now() + 86_400_000).toISOString();
      const set = data(
        await teacher()<{ updateExamSettings: Record<string, unknown> }>(SETTINGS, {
          id: exam.id,
          s: { timeLimitMinutes: 30, attemptsAllowed: null, showAnswers: 'NEVER', closesAt },
        }),
      );
      expect(set.updateExamSettings).toEqual({
        timeLimitMinutes: 30,
        attemptsAllowed: null,
        showAnswers: 'NEVER',
        closesAt,
        title: 'Review me',
      });

      const published = data(
        await teacher()<{ publishExam: { status: string; publishedAt: string } }>(
          `mutation($id: ID!) { publishExam(id: $id) { status publishedAt } }`,
          { id: exam.id },
        ),
      );
      expect(published.publishExam.status).toBe('PUBLISHED');
      const edit = await teacher()(UPDATE, { id: exam.questions![0]!.id, i: { explanation: 'Changed.' } });
      expect(refusal(edit)).toMatchObject({ code: 'CONFLICT', reason: 'NOT_DRAFT' });
      // Students now see it, without its questions.
      const seen = await gqlAs(stack, course.students[0]!.token)<{ exam: { status: string; questionCount: number; questions: unknown } }>(
        `query($id: ID!) { exam(id: $id) { status questionCount questions { id } } }`,
        { id: exam.id },
      );
      expect(data(seen).exam).toEqual({ status: 'PUBLISHED', questionCount: 8, questions: null });

      const back = data(
        await teacher()<{ unpublishExam: { status: string; publishedAt: null } }>(
          `mutation($id: ID!) { unpublishExam(id: $id) { status publishedAt } }`,
          { id: exam.id },
        ),
      );
      expect(back.unpublishExam).toEqual({ status: 'DRAFT', publishedAt: null });

      const deleted = data(await teacher()<{ deleteExam: boolean }>(`mutation($id: ID!) { deleteExam(id: $id) }`, { id: exam.id }));
      expect(deleted.deleteExam).toBe(true);
      expect(refusal(await getExam(stack, course.teacherToken, exam.id)).code).toBe('NOT_FOUND');
      expect(await sql('SELECT 1 FROM "ExamQuestion" WHERE "examId" = $1', [exam.id])).toEqual([]);
    });
  });

  it('exports a stored exam as GIFT, Moodle XML and a QTI package, each question whole', async () => {
    const { exam } = await generateAndWait(stack, course.teacherToken, {
      courseId: course.courseId,
      title: 'Export: "quoted" & <tagged>',
      questionCount: 8,
      types: ALL_TYPES,
      seed: 5,
    });
    // The exam as lib/exam knows it, rebuilt from what the API shows its teacher.
    const drafts: ExamQuestionDraft[] = exam.questions!.map((x) => ({
      type: x.type,
      stem: x.stem,
      ...(x.type === 'MULTIPLE_CHOICE' ? { options: x.options, answerIndex: x.answerIndex! } : {}),
      ...(x.type === 'TRUE_FALSE' ? { answerBool: x.answerBool! } : {}),
      ...(x.type === 'FILL_IN_THE_BLANK' || x.type === 'SHORT_ANSWER' ? { answerText: x.answerText! } : {}),
      ...(x.type === 'FILL_IN_THE_BLANK' && x.acceptedAnswers?.length ? { acceptedAnswers: x.acceptedAnswers } : {}),
      ...(x.type === 'SHORT_ANSWER' ? { keyTerms: x.keyTerms! } : {}),
      explanation: x.explanation!,
      source: {
        chunkId: x.source!.chunkId,
        documentId: x.source!.document.id,
        documentTitle: x.source!.documentTitle,
        pageStart: x.source!.pageStart,
        pageEnd: x.source!.pageEnd,
        page: x.source!.page,
        pageExact: x.source!.pageExact,
        sentence: x.source!.sentence!,
      },
    }));
    const whole = { title: exam.title, questions: drafts };
    const EXPORT = `query($id: ID!, $f: ExamExportFormat!) { exportExam(id: $id, format: $f) { format filename mimeType encoding content files { path content } } }`;
    type Export = {
      format: string;
      filename: string;
      mimeType: string;
      encoding: string;
      content: string;
      files: { path: string; content: string }[];
    };
    const get = async (f: string) =>
      data(await gqlAs(stack, course.teacherToken)<{ exportExam: Export }>(EXPORT, { id: exam.id, f })).exportExam;

    const gift = await get('GIFT');
    expect(gift).toMatchObject({ filename: 'export-quoted-tagged.gift.txt', encoding: 'UTF8', mimeType: 'text/plain; charset=utf-8' });
    expect(gift.content).toBe(toGift(whole));
    expect(gift.files).toEqual([{ path: gift.filename, content: gift.content }]);
    for (const d of drafts) {
      expect(gift.content).toContain(escapeGift(d.stem));
      expect(gift.content).toContain(escapeGift(d.explanation));
      expect(gift.content).toContain(d.source.sentence.replace(/\s+/g, ' '));
    }

    const moodle = await get('MOODLE_XML');
    expect(moodle).toMatchObject({ filename: 'export-quoted-tagged.moodle.xml', encoding: 'UTF8', mimeType: 'application/xml' });
    expect(moodle.content).toBe(toMoodleXml(whole));

    const qti = await get('QTI');
    expect(qti).toMatchObject({ filename: 'export-quoted-tagged.qti.zip', encoding: 'BASE64', mimeType: 'application/zip' });
    expect(qti.files).toEqual(toQti(whole).files);
    expect(qti.files.map((f) => f.path)).toEqual([
      'imsmanifest.xml',
      'assessmentTest.xml',
      ...drafts.map((_, i) => `items/Q${String(i + 1).padStart(2, '0')}.xml`),
    ]);
    const unzipped = unzipFiles(Buffer.from(qti.content, 'base64'));
    expect(unzipped.map((e) => ({ path: e.path, content: e.content.toString('utf8') }))).toEqual(qti.files);

    // Teachers only.
    const student = await gqlAs(stack, course.students[0]!.token)(EXPORT, { id: exam.id, f: 'GIFT' });
    expect(['FORBIDDEN', 'NOT_FOUND']).toContain(refusal(student).code);
  }, 180_000);
});
