import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  buildClientSchema,
  getIntrospectionQuery,
  getNamedType,
  isLeafType,
  isNonNullType,
  isObjectType,
  Kind,
  parse,
  type GraphQLSchema,
  type IntrospectionQuery,
} from 'graphql';
import { startTestStack, type TestStack } from '../support/stack.js';
import {
  answer,
  answerFor,
  data,
  dbQueries,
  examCourse,
  generateAndWait,
  gqlAs,
  publish,
  refusal,
  sql,
  startAttempt,
  submit,
  type AttemptView,
  type ExamView,
  type QuestionView,
  ownRedisDatabase,
} from '../support/exam.js';

/** Limits high enough for the whole-schema queries below (the router's own limits are tested elsewhere). */
const ROUTER = {
  RATE_LIMIT_STUDENT: '1000000',
  RATE_LIMIT_TEACHER: '1000000',
  QUERY_MAX_DEPTH: '30',
  QUERY_MAX_ALIASES: '100000',
  QUERY_MAX_COST: '100000000',
};

type Course = Awaited<ReturnType<typeof examCourse>>;

/** Takes a whole attempt: starts, answers every question right or wrong as `right(i, q)` says (undefined: leaves it), submits. */
async function takeExam(stack: TestStack, token: string, exam: ExamView, right: (i: number, q: QuestionView) => boolean | undefined) {
  const attempt = data(await startAttempt(stack, token, exam.id)).startAttempt;
  for (const [i, q] of exam.questions!.entries()) {
    const r = right(i, q);
    if (r !== undefined) data(await answer(stack, token, attempt.id, q.id, answerFor(q, r)));
  }
  return data(await submit(stack, token, attempt.id)).submitAttempt;
}

describe('exam attempts and grading', () => {
  let stack: TestStack;
  let course: Course;
  let exam: ExamView;

  let restoreRedis = () => {};

  beforeAll(async () => {
    restoreRedis = ownRedisDatabase();
    stack = await startTestStack({ router: ROUTER });
    course = await examCourse(stack, { students: 8, prefix: 'attempts' });
    ({ exam } = await generateAndWait(stack, course.teacherToken, {
      courseId: course.courseId,
      title: 'Quiz',
      questionCount: 8,
      types: ['MULTIPLE_CHOICE', 'TRUE_FALSE', 'SHORT_ANSWER', 'FILL_IN_THE_BLANK'],
      seed: 21,
    }));
    await publish(stack, course.teacherToken, exam.id, { attemptsAllowed: 1, showAnswers: 'AFTER_SUBMIT' });
  }, 300_000);
  afterAll(async () => {
    await stack?.stop();
    restoreRedis();
  });

  it('starts an attempt with the questions and no keys; starting again returns the running attempt', async () => {
    const student = course.students[0]!;
    const first = data(await startAttempt(stack, student.token, exam.id)).startAttempt;
    expect(first).toMatchObject({ number: 1, status: 'IN_PROGRESS', deadline: null, secondsLeft: null, score: null, answersShown: false });
    expect(first.questions.map((q) => q.id)).toEqual(exam.questions!.map((q) => q.id));
    expect(first.questions.map((q) => q.stem)).toEqual(exam.questions!.map((q) => q.stem));
    const again = data(await startAttempt(stack, student.token, exam.id)).startAttempt;
    expect(again.id).toBe(first.id);
    // Only members take it.
    const outsider = await stack.token(stack.user('attempts-outsider'), 'STUDENT');
    expect(refusal(await startAttempt(stack, outsider, exam.id)).code).toBe('FORBIDDEN');
    // Nobody else reads the attempt; its course's teacher does.
    const peek = `query($id: ID!) { examAttempt(id: $id) { id userId } }`;
    expect(refusal(await stack.gql(peek, { id: first.id }, { token: course.students[1]!.token })).code).toBe('NOT_FOUND');
    expect(
      data(await stack.gql<{ examAttempt: { userId: string } }>(peek, { id: first.id }, { token: course.teacherToken })).examAttempt.userId,
    ).toBe(student.id);
  });

  it('saves answers until submission, then grades every type at once and shows the results', async () => {
    const student = course.students[0]!;
    const attempt = data(await startAttempt(stack, student.token, exam.id)).startAttempt;
    const qs = exam.questions!;
    const right = (i: number) => i % 2 === 0;
    // A wrong answer first, then changed: what counts is the last one saved before submission.
    const firstSaved = data(await answer(stack, student.token, attempt.id, qs[0]!.id, answerFor(qs[0]!, false))).answerQuestion;
    expect(firstSaved.correct).toBeNull();
    for (const [i, q] of qs.entries()) {
      const saved = data(await answer(stack, student.token, attempt.id, q.id, answerFor(q, right(i)))).answerQuestion;
      expect(saved.correct).toBeNull();
    }
    // An answer of the wrong kind names its field.
    const mc = qs.find((q) => q.type === 'MULTIPLE_CHOICE')!;
    expect(refusal(await answer(stack, student.token, attempt.id, mc.id, { text: 'B' }))).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'answer.choice',
    });
    expect(refusal(await answer(stack, student.token, attempt.id, mc.id, { choice: 7 }))).toMatchObject({ field: 'answer.choice' });

    const graded = data(await submit(stack, student.token, attempt.id)).submitAttempt;
    expect(graded).toMatchObject({ status: 'SUBMITTED', autoSubmitted: false, maxScore: 8, answersShown: true });
    expect(graded.answers.map((a) => a.question.id)).toEqual(qs.map((q) => q.id));
    for (const [i, a] of graded.answers.entries()) {
      expect({ i, type: qs[i]!.type, correct: a.correct }).toEqual({ i, type: qs[i]!.type, correct: right(i) });
      expect(a.score).toBe(right(i) ? 1 : 0);
      expect(a.feedback).toEqual(expect.any(String));
    }
    expect(graded.score).toBe(4);
    // Submitting again changes nothing; answering after submission is refused.
    expect(data(await submit(stack, student.token, attempt.id)).submitAttempt.score).toBe(4);
    expect(refusal(await answer(stack, student.token, attempt.id, qs[1]!.id, answerFor(qs[1]!, true)))).toMatchObject({
      code: 'CONFLICT',
      reason: 'ATTEMPT_SUBMITTED',
    });
    // Results carry the explanation and the page to reread.
    const review = data(
      await stack.gql<{ examAttempt: { answers: { question: QuestionView }[] } }>(
        `query($id: ID!) { examAttempt(id: $id) { answers { question { explanation answerText answerIndex answerBool source { page document { id } sentence } } } } }`,
        { id: attempt.id },
        { token: student.token },
      ),
    ).examAttempt;
    for (const [i, a] of review.answers.entries()) {
      expect(a.question.explanation).toBe(qs[i]!.explanation);
      expect(a.question.source).toEqual({
        page: qs[i]!.source!.page,
        document: qs[i]!.source!.document,
        sentence: qs[i]!.source!.sentence,
      });
    }
    // One attempt allowed: no second one; and the exam can no longer go back to a draft.
    expect(refusal(await startAttempt(stack, student.token, exam.id))).toMatchObject({ code: 'CONFLICT', reason: 'NO_ATTEMPTS_LEFT' });
    const unpublish = await stack.gql(
      'mutation($id: ID!) { unpublishExam(id: $id) { status } }',
      { id: exam.id },
      { token: course.teacherToken },
    );
    expect(refusal(unpublish)).toMatchObject({ code: 'CONFLICT', reason: 'HAS_ATTEMPTS' });
  });

  it('gives partial credit to a short answer that mentions some of the key terms', async () => {
    const student = course.students[1]!;
    const sa = exam.questions!.find((q) => q.type === 'SHORT_ANSWER' && (q.keyTerms?.length ?? 0) >= 2)!;
    const attempt = data(await startAttempt(stack, student.token, exam.id)).startAttempt;
    data(await answer(stack, student.token, attempt.id, sa.id, { text: `It is about ${sa.keyTerms![0]}.` }));
    const graded = data(await submit(stack, student.token, attempt.id)).submitAttempt;
    const a = graded.answers.find((x) => x.question.id === sa.id)!;
    expect(a.score).toBeGreaterThan(0);
    expect(a.score).toBeLessThan(1);
    expect(a.correct).toBe(false);
    expect(a.feedback).toMatch(/Key terms: 1 of \d/);
    // Unanswered questions count, as wrong.
    expect(graded.answers).toHaveLength(exam.questions!.length);
    expect(graded.answers.filter((x) => x.question.id !== sa.id).every((x) => x.correct === false && x.score === 0)).toBe(true);
  });

  describe('time limit', () => {
    let timed: ExamView;
    beforeAll(async () => {
      ({ exam: timed } = await generateAndWait(stack, course.teacherToken, {
        courseId: course.courseId,
        title: 'Timed',
        questionCount: 4,
        types: ['MULTIPLE_CHOICE', 'TRUE_FALSE'],
        seed: 9,
      }));
      await publish(stack, course.teacherToken, timed.id, { timeLimitMinutes: 1, attemptsAllowed: 2, showAnswers: 'NEVER' });
    }, 180_000);

    it('sets the deadline on the server, refuses answers after it and submits what was saved before', async () => {
      const student = course.students[2]!;
      const attempt = data(await startAttempt(stack, student.token, timed.id)).startAttempt;
      const started = Date.parse(attempt.startedAt);
      expect(Date.parse(attempt.deadline!) - started).toBe(60_000);
      expect(attempt.secondsLeft).toBeGreaterThan(0);
      expect(attempt.secondsLeft).toBeLessThanOrEqual(60);
      const [q0, q1] = timed.questions!;
      data(await answer(stack, student.token, attempt.id, q0!.id, answerFor(q0!, true)));
      // The clock runs out (moved, rather than waited for).
      await sql(`UPDATE "ExamAttempt" SET deadline = now() - interval '10 seconds' WHERE id = $1`, [attempt.id]);
      const late = await answer(stack, student.token, attempt.id, q1!.id, answerFor(q1!, true));
      expect(refusal(late)).toMatchObject({ code: 'CONFLICT', reason: 'TIME_UP' });
      const after = data(
        await stack.gql<{ examAttempt: AttemptView }>(
          `query($id: ID!) { examAttempt(id: $id) { status autoSubmitted score maxScore answersShown secondsLeft
            answers { question { id explanation answerIndex answerBool source { page sentence } } choice truth correct score feedback } } }`,
          { id: attempt.id },
          { token: student.token },
        ),
      ).examAttempt as unknown as {
        status: string;
        autoSubmitted: boolean;
        score: number;
        answersShown: boolean;
        secondsLeft: number | null;
        answers: {
          question: QuestionView;
          correct: boolean;
          score: number;
          feedback: string | null;
          choice: number | null;
          truth: boolean | null;
        }[];
      };
      expect(after).toMatchObject({ status: 'SUBMITTED', autoSubmitted: true, score: 1, answersShown: false, secondsLeft: null });
      expect(after.answers.map((a) => a.correct)).toEqual([true, false, false, false]);
      // showAnswers NEVER: correctness and the page to reread, but no key, explanation, sentence or feedback.
      for (const a of after.answers) {
        expect(a.question.explanation).toBeNull();
        expect(a.question.answerIndex).toBeNull();
        expect(a.question.answerBool).toBeNull();
        expect(a.feedback).toBeNull();
        expect(a.question.source!.page).toBeGreaterThan(0);
        expect(a.question.source!.sentence).toBeNull();
      }
    });

    it('submits an expired attempt when it is next read, and refuses attempts once the exam has closed', async () => {
      const student = course.students[3]!;
      const attempt = data(await startAttempt(stack, student.token, timed.id)).startAttempt;
      data(await answer(stack, student.token, attempt.id, timed.questions![0]!.id, answerFor(timed.questions![0]!, true)));
      await sql(`UPDATE "ExamAttempt" SET deadline = now() - interval '10 seconds' WHERE id = $1`, [attempt.id]);
      const read = data(
        await stack.gql<{
          exam: { myAttempts: { id: string; status: string; autoSubmitted: boolean; score: number }[]; attemptsLeft: number };
        }>(
          `query($id: ID!) { exam(id: $id) { attemptsLeft myAttempts { id status autoSubmitted score } } }`,
          { id: timed.id },
          { token: student.token },
        ),
      ).exam;
      expect(read.myAttempts).toEqual([{ id: attempt.id, status: 'SUBMITTED', autoSubmitted: true, score: 1 }]);
      expect(read.attemptsLeft).toBe(1);

      await stack.gql(
        'mutation($id: ID!, $s: ExamSettingsInput!) { updateExamSettings(id: $id, input: $s) { id } }',
        { id: timed.id, s: { closesAt: new Date(Date.now() - 1000).toISOString() } },
        { token: course.teacherToken },
      );
      expect(refusal(await startAttempt(stack, student.token, timed.id))).toMatchObject({ code: 'CONFLICT', reason: 'EXAM_CLOSED' });
    });
  });

  describe('keys never reach a student before they submit', () => {
    let secret: ExamView;
    let schema: GraphQLSchema;
    /** Fields of the exam subgraph, by type: the query below asks for every one of them. */
    const own = new Map<string, Set<string>>();
    /** What a student must not see mid-attempt, as Type.field. */
    const HIDDEN = [
      'Exam.questions',
      'Exam.generation',
      'Exam.issues',
      'Exam.attempts',
      'Exam.itemAnalysis',
      'Question.answerIndex',
      'Question.answerBool',
      'Question.answerText',
      'Question.acceptedAnswers',
      'Question.keyTerms',
      'Question.explanation',
      'Question.source',
      'Question.issues',
      'QuestionSource.sentence',
      'ExamAttempt.score',
      'ExamAttempt.maxScore',
      'ExamAnswer.correct',
      'ExamAnswer.score',
      'ExamAnswer.feedback',
      'ExamAnswer.matchedKeyTerms',
      'ExamAnswer.missingKeyTerms',
    ];

    /** The object types the selections below reach. */
    const reachedTypes = new Set<string>();

    /** Every field of the exam subgraph reachable from `type`, each object type once per path. */
    function selection(typeName: string, path: string[]): string {
      const type = schema.getType(typeName);
      if (!isObjectType(type)) throw new Error(`${typeName} is not an object type`);
      reachedTypes.add(typeName);
      const parts = ['__typename'];
      for (const field of Object.values(type.getFields())) {
        if (!own.get(typeName)?.has(field.name)) continue;
        if (field.args.some((a) => isNonNullType(a.type) && a.defaultValue === undefined)) continue;
        const named = getNamedType(field.type);
        if (isLeafType(named)) parts.push(field.name);
        else if (isObjectType(named)) {
          if (path.includes(named.name)) parts.push(`${field.name} { __typename${own.get(named.name)?.has('id') ? ' id' : ''} }`);
          else parts.push(`${field.name} { ${selection(named.name, [...path, named.name])} }`);
        }
      }
      return parts.join(' ');
    }

    /** Type.field paths in a response (by __typename) whose value is not null. */
    function shown(value: unknown, out = new Set<string>()): Set<string> {
      if (Array.isArray(value)) for (const v of value) shown(v, out);
      else if (value && typeof value === 'object') {
        const o = value as Record<string, unknown>;
        for (const [k, v] of Object.entries(o)) {
          if (typeof o['__typename'] === 'string' && v !== null && !(Array.isArray(v) && !v.length)) out.add(`${o['__typename']}.${k}`);
          shown(v, out);
        }
      }
      return out;
    }

    /** A response without what changes by itself (the time of an answer, the seconds left). */
    const stable = (value: unknown): unknown =>
      JSON.parse(JSON.stringify(value, (k, v: unknown) => (k === 'answeredAt' || k === 'secondsLeft' ? undefined : v)));

    beforeAll(async () => {
      ({ exam: secret } = await generateAndWait(stack, course.teacherToken, {
        courseId: course.courseId,
        title: 'Secret',
        questionCount: 8,
        types: ['MULTIPLE_CHOICE', 'TRUE_FALSE', 'SHORT_ANSWER', 'FILL_IN_THE_BLANK'],
        seed: 77,
      }));
      await publish(stack, course.teacherToken, secret.id, { attemptsAllowed: 2, showAnswers: 'AFTER_SUBMIT' });
      const intro = data(await stack.gql<IntrospectionQuery>(getIntrospectionQuery(), {}, { token: course.teacherToken }));
      schema = buildClientSchema(intro);
      const sdl = parse(readFileSync(new URL('../../subgraphs/exam/schema.graphql', import.meta.url), 'utf8'));
      for (const def of sdl.definitions) {
        if (def.kind !== Kind.OBJECT_TYPE_DEFINITION && def.kind !== Kind.OBJECT_TYPE_EXTENSION) continue;
        const fields = own.get(def.name.value) ?? new Set<string>();
        for (const f of def.fields ?? []) fields.add(f.name.value);
        own.set(def.name.value, fields);
      }
    }, 180_000);

    it('asks for every field of every type as a student mid-attempt: nothing hidden is shown, nothing shown depends on a key', async () => {
      const student = course.students[4]!;
      const as = gqlAs(stack, student.token);
      const attemptSel = selection('ExamAttempt', ['ExamAttempt']);
      const examSel = selection('Exam', ['Exam']);
      const answerSel = selection('ExamAnswer', ['ExamAnswer']);
      // The queries cover the subgraph: every object type it defines is reached (exports are checked apart).
      const expected = [...own.keys()].filter((t) => !['Query', 'Mutation', 'ExamExport', 'ExportFile'].includes(t)).sort();
      expect([...reachedTypes].sort()).toEqual(expected);

      const start = await as<{ startAttempt: { id: string } }>(`mutation($e: ID!) { startAttempt(examId: $e) { ${attemptSel} } }`, {
        e: secret.id,
      });
      const attemptId = data(start).startAttempt.id;
      const answerAll = async () => {
        const out: unknown[] = [];
        for (const q of secret.questions!) {
          const res = await as(
            `mutation($a: ID!, $q: ID!, $v: AnswerInput!) { answerQuestion(attemptId: $a, questionId: $q, answer: $v) { ${answerSel} } }`,
            { a: attemptId, q: q.id, v: answerFor(q, true) },
          );
          out.push(data(res));
        }
        return out;
      };
      const everything = async () => {
        const res = await as(`query($e: ID!, $a: ID!) { exam(id: $e) { ${examSel} } examAttempt(id: $a) { ${attemptSel} } }`, {
          e: secret.id,
          a: attemptId,
        });
        expect(res.body.errors).toBeUndefined();
        const again = await as(`mutation($e: ID!) { startAttempt(examId: $e) { ${attemptSel} } }`, { e: secret.id });
        return { query: data(res), start: data(again) };
      };

      const saved = await answerAll();
      const before = await everything();
      const reached = shown([saved, before]);
      for (const field of HIDDEN) expect({ field, shown: reached.has(field) }).toEqual({ field, shown: false });
      // The query did reach the questions and the saved answers.
      expect(reached.has('Question.stem')).toBe(true);
      expect(reached.has('ExamAnswer.choice') || reached.has('ExamAnswer.truth')).toBe(true);
      // Exports are for teachers.
      expect(refusal(await as(`query($e: ID!) { exportExam(id: $e, format: GIFT) { content } }`, { e: secret.id })).code).toBe('FORBIDDEN');

      // Every key, explanation and sentence changes behind the API's back; the student's answers are saved again.
      await sql(
        `UPDATE "ExamQuestion" SET "answerIndex" = ("answerIndex" + 1) % 4, "answerBool" = NOT "answerBool",
           "answerText" = "answerText" || ' (changed)', "keyTerms" = ARRAY['changed'], "acceptedAnswers" = ARRAY['changed'],
           explanation = explanation || ' (changed)', sentence = sentence || ' (changed)'
         WHERE "examId" = $1`,
        [secret.id],
      );
      const savedAgain = await answerAll();
      const after = await everything();
      expect(stable(savedAgain)).toEqual(stable(saved));
      expect(stable(after)).toEqual(stable(before));

      // Once submitted (showAnswers AFTER_SUBMIT), the same query shows them: the check above could fail.
      data(await submit(stack, student.token, attemptId));
      const res = await as(`query($e: ID!, $a: ID!) { examAttempt(id: $a) { ${attemptSel} } exam(id: $e) { id } }`, {
        e: secret.id,
        a: attemptId,
      });
      const revealed = shown(data(res));
      for (const field of [
        'Question.explanation',
        'Question.source',
        'QuestionSource.sentence',
        'ExamAnswer.correct',
        'ExamAnswer.feedback',
        'ExamAttempt.score',
      ])
        expect({ field, shown: revealed.has(field) }).toEqual({ field, shown: true });
      // A second attempt hides them again while it runs.
      const second = data(await startAttempt(stack, student.token, secret.id)).startAttempt;
      expect(second.number).toBe(2);
      const during = shown(data(await as(`query($a: ID!) { examAttempt(id: $a) { ${attemptSel} } }`, { a: attemptId })));
      for (const field of HIDDEN) expect({ field, shown: during.has(field) }).toEqual({ field, shown: false });
    }, 180_000);
  });

  it('computes item analysis over submitted attempts: difficulty, discrimination and distractor counts', async () => {
    const { exam: items } = await generateAndWait(stack, course.teacherToken, {
      courseId: course.courseId,
      title: 'Items',
      questionCount: 6,
      types: ['MULTIPLE_CHOICE', 'TRUE_FALSE'],
      seed: 5,
    });
    await publish(stack, course.teacherToken, items.id, { attemptsAllowed: null });
    const qs = items.questions!;
    // Six students' answers (1 right, 0 wrong, - left out); wrong MC answers spread over the distractors.
    const matrix = ['111111', '111110', '111000', '110001', '100100', '-00000'];
    const wrongChoice = (q: QuestionView, s: number) => (q.answerIndex! + 1 + (s % 3)) % 4;
    const chosen: (number | null)[][] = matrix.map((row, s) =>
      [...row].map((c, i) => {
        const q = qs[i]!;
        if (c === '-') return null;
        if (q.type === 'MULTIPLE_CHOICE') return c === '1' ? q.answerIndex! : wrongChoice(q, s);
        const truth = c === '1' ? q.answerBool! : !q.answerBool!;
        return truth ? 0 : 1;
      }),
    );
    for (const [s, row] of matrix.entries()) {
      const token = course.students[s]!.token;
      const attempt = data(await startAttempt(stack, token, items.id)).startAttempt;
      for (const [i, q] of qs.entries()) {
        const c = chosen[s]![i]!;
        if (row[i] === '-') continue;
        data(await answer(stack, token, attempt.id, q.id, q.type === 'MULTIPLE_CHOICE' ? { choice: c } : { truth: c === 0 }));
      }
      data(await submit(stack, token, attempt.id));
    }
    // An attempt still running is not counted.
    data(await startAttempt(stack, course.students[6]!.token, items.id));

    const res = await gqlAs(stack, course.teacherToken)<{
      exam: {
        itemAnalysis: {
          attempts: number;
          meanScore: number;
          maxScore: number;
          items: {
            question: { id: string };
            responses: number;
            difficulty: number;
            discrimination: number | null;
            options: { index: number; text: string; chosen: number; key: boolean }[];
            omitted: number;
          }[];
        };
      };
    }>(
      `query($id: ID!) { exam(id: $id) { itemAnalysis { attempts meanScore maxScore
        items { question { id } responses difficulty discrimination options { index text chosen key } omitted } } } }`,
      { id: items.id },
    );
    const analysis = data(res).exam.itemAnalysis;
    const scores: number[][] = matrix.map((row) => [...row].map((c) => (c === '1' ? 1 : 0)));
    const totals = scores.map((r) => r.reduce((a: number, b: number) => a + b, 0));
    const pearson = (x: number[], y: number[]) => {
      const mx = x.reduce((a, b) => a + b, 0) / x.length;
      const my = y.reduce((a, b) => a + b, 0) / y.length;
      const sxy = x.reduce((a, v, i) => a + (v - mx) * (y[i]! - my), 0);
      const sxx = x.reduce((a, v) => a + (v - mx) ** 2, 0);
      const syy = y.reduce((a, v) => a + (v - my) ** 2, 0);
      return sxx && syy ? sxy / Math.sqrt(sxx * syy) : null;
    };
    expect(analysis.attempts).toBe(6);
    expect(analysis.maxScore).toBe(6);
    expect(analysis.meanScore).toBeCloseTo(totals.reduce((a, b) => a + b, 0) / 6, 10);
    expect(analysis.items.map((it) => it.question.id)).toEqual(qs.map((q) => q.id));
    for (const [i, it] of analysis.items.entries()) {
      const item = scores.map((r) => r[i]!);
      expect(it.responses).toBe(6);
      expect(it.difficulty).toBeCloseTo(item.reduce((a, b) => a + b, 0) / 6, 10);
      const d = pearson(
        item,
        totals.map((t, s) => t - item[s]!),
      );
      if (d === null) expect(it.discrimination).toBeNull();
      else expect(it.discrimination).toBeCloseTo(d, 10);
      const q = qs[i]!;
      const counts = (q.type === 'MULTIPLE_CHOICE' ? [0, 1, 2, 3] : [0, 1]).map((o) => chosen.filter((row) => row[i] === o).length);
      expect(it.options.map((o) => o.chosen)).toEqual(counts);
      expect(it.omitted).toBe(chosen.filter((row) => row[i] === null).length);
      expect(it.options.filter((o) => o.key).map((o) => o.index)).toEqual([
        q.type === 'MULTIPLE_CHOICE' ? q.answerIndex! : q.answerBool ? 0 : 1,
      ]);
      if (q.type === 'MULTIPLE_CHOICE') expect(it.options.map((o) => o.text)).toEqual(q.options);
    }
    // The first question discriminates (only the weakest student missed it); the figures say so.
    expect(analysis.items[0]!.discrimination).toBeGreaterThan(0.5);
    // Students do not see the analysis.
    const asStudent = data(
      await gqlAs(stack, course.students[0]!.token)<{ exam: { itemAnalysis: unknown; attempts: unknown } }>(
        `query($id: ID!) { exam(id: $id) { itemAnalysis { attempts } attempts { id } } }`,
        { id: items.id },
      ),
    );
    expect(asStudent.exam).toEqual({ itemAnalysis: null, attempts: null });
  }, 300_000);

  it('reads exams, questions, attempts, answers and item analysis with a constant number of queries (no N+1)', async () => {
    const query = `query($c: ID!) { course(id: $c) { exams { id questionCount issues { rule }
      questions { id stem options source { page sentence document { id } } issues { rule } }
      attempts { id score answers { correct score question { id stem } } }
      itemAnalysis { attempts items { question { id } difficulty discrimination options { chosen key } } }
      myAttempts { id } generation { made task { id } } } } }`;
    const measure = async (exams: number) => {
      const c = await examCourse(stack, { students: 2, biology: false, prefix: `n1-${exams}` });
      for (let e = 0; e < exams; e++) {
        const { exam: x } = await generateAndWait(stack, c.teacherToken, {
          courseId: c.courseId,
          title: `E${e}`,
          questionCount: 3,
          types: ['MULTIPLE_CHOICE', 'TRUE_FALSE'],
          seed: e,
        });
        await publish(stack, c.teacherToken, x.id);
        for (const s of c.students) await takeExam(stack, s.token, x, (i) => i % 2 === 0);
      }
      const before = await dbQueries(stack, 'exam');
      const res = await gqlAs(stack, c.teacherToken)<{ course: { exams: { attempts: unknown[]; questions: unknown[] }[] } }>(query, {
        c: c.courseId,
      });
      const count = (await dbQueries(stack, 'exam')) - before;
      expect(res.body.errors).toBeUndefined();
      expect(data(res).course.exams).toHaveLength(exams);
      expect(data(res).course.exams.every((x) => x.attempts.length === 2 && x.questions.length === 3)).toBe(true);
      return count;
    };
    const one = await measure(1);
    const three = await measure(3);
    expect(one).toBeGreaterThan(0);
    expect(three).toBe(one);
  }, 600_000);
});
