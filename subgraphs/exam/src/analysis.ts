/**
 * Item analysis for teachers (lib/exam itemAnalysis over the exam's submitted
 * attempts) and exports (lib/exam toGift / toMoodleXml / toQti).
 */
import { requireCourseTeacher } from '@lib/access.js';
import type { Exam, ExamQuestion } from '@lib/db/client.js';
import { itemAnalysis, toGift, toMoodleXml, toQti, type SubmittedAttempt } from '@lib/exam/index.js';
import type { ExamContext } from './context.js';
import { teacherExam } from './exams.js';
import { answerValue, toDraft } from './rows.js';
import { zipFiles } from './zip.js';

/** The option a response chose, for choice items: the MC index, or TRUE_FALSE as 0 (true) / 1 (false). */
function optionIndex(q: ExamQuestion, value: unknown): number | null {
  const v = answerValue((value ?? null) as never);
  if (q.type === 'MULTIPLE_CHOICE') return typeof v === 'number' && Number.isInteger(v) ? v : null;
  if (q.type === 'TRUE_FALSE') return typeof v === 'boolean' ? (v ? 0 : 1) : null;
  return null;
}

export async function examItemAnalysis(ctx: ExamContext, exam: Exam) {
  await requireCourseTeacher(ctx, exam.courseId);
  const [questions, attempts] = await Promise.all([ctx.questionsByExam.load(exam.id), ctx.attemptsByExam.load(exam.id)]);
  const submitted = attempts.filter((a) => a.status === 'SUBMITTED');
  const answers = await ctx.answersByAttempt.loadMany(submitted.map((a) => a.id));
  const index = new Map(questions.map((q, i) => [q.id, i]));
  const data: SubmittedAttempt[] = submitted.map((a, i) => {
    const rows = answers[i] ?? [];
    if (rows instanceof Error) throw rows;
    return {
      totalScore: a.score ?? undefined,
      responses: rows.flatMap((r) => {
        const at = index.get(r.questionId);
        if (at === undefined) return [];
        return [{ question: at, score: r.score ?? 0, optionIndex: optionIndex(questions[at]!, r.value) }];
      }),
    };
  });
  const stats = itemAnalysis(questions.map(toDraft), data);
  const scores = submitted.map((a) => a.score ?? 0);
  return {
    attempts: submitted.length,
    meanScore: scores.length ? scores.reduce((x, y) => x + y, 0) / scores.length : null,
    maxScore: questions.length,
    items: stats.map((s) => {
      const q = questions[s.question]!;
      const labels = q.type === 'MULTIPLE_CHOICE' ? q.options : q.type === 'TRUE_FALSE' ? ['True', 'False'] : [];
      const key = q.type === 'MULTIPLE_CHOICE' ? q.answerIndex : q.type === 'TRUE_FALSE' ? (q.answerBool ? 0 : 1) : null;
      return {
        question: q,
        responses: s.responses,
        difficulty: s.difficulty,
        discrimination: s.discrimination,
        pointBiserialUncorrected: s.pointBiserialUncorrected,
        options: labels.map((text, i) => ({ index: i, text, chosen: s.optionCounts[i] ?? 0, key: i === key })),
        omitted: s.omitted,
      };
    }),
  };
}

export type ExportFormat = 'GIFT' | 'MOODLE_XML' | 'QTI';

function slug(title: string): string {
  return (
    title
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 60) || 'exam'
  );
}

export async function exportExam(ctx: ExamContext, rawId: string, format: ExportFormat) {
  const exam = await teacherExam(ctx, rawId);
  const questions = await ctx.questionsByExam.load(exam.id);
  const doc = { title: exam.title, questions: questions.map(toDraft) };
  const name = slug(exam.title);
  ctx.log.info({ examId: exam.id, format, questions: questions.length }, 'exam exported');
  if (format === 'GIFT') {
    const content = toGift(doc);
    const filename = `${name}.gift.txt`;
    return { format, filename, mimeType: 'text/plain; charset=utf-8', encoding: 'UTF8', content, files: [{ path: filename, content }] };
  }
  if (format === 'MOODLE_XML') {
    const content = toMoodleXml(doc);
    const filename = `${name}.moodle.xml`;
    return { format, filename, mimeType: 'application/xml', encoding: 'UTF8', content, files: [{ path: filename, content }] };
  }
  const { files } = toQti(doc);
  return {
    format,
    filename: `${name}.qti.zip`,
    mimeType: 'application/zip',
    encoding: 'BASE64',
    content: zipFiles(files).toString('base64'),
    files,
  };
}
