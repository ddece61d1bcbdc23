import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { COURSE_PASSAGES } from './fixtures/course.js';
import { child, findAll, parseXml, type XmlElement } from './fixtures/xml-check.js';
import { escapeGift, toGift } from './gift.js';
import { toMoodleXml } from './moodle-xml.js';
import { generateOffline } from './offline.js';
import { QTI_NS, toQti } from './qti.js';
import type { Exam, ExamQuestionDraft } from './types.js';
import { cdata, escapeHtml } from './xml.js';

const NASTY = 'Tilde ~ equals = hash # braces { } colon : backslash \\ and "]]>" & <b>tags</b> \'quotes\'';
const source = {
  chunkId: 'h2',
  documentId: 'doc-history',
  documentTitle: 'History: {Modern} ~ #1 = "A&B"',
  pageStart: 2,
  pageEnd: 2,
  page: 2,
  sentence: 'The storming of the Bastille took place on 14 July 1789 in Paris.',
};
const HANDMADE: ExamQuestionDraft[] = [
  {
    type: 'MULTIPLE_CHOICE',
    stem: `${NASTY} — which year? _____`,
    options: ['17{89}', 'a = b', '1799 ~ 1800', 'x: y # z \\ w ]]> &'],
    answerIndex: 3,
    explanation: `Because ${NASTY}.`,
    source,
  },
  { type: 'TRUE_FALSE', stem: `True or false: ${NASTY}`, answerBool: false, explanation: `No: ${NASTY}`, source },
  { type: 'TRUE_FALSE', stem: 'True or false: Paris is in France.', answerBool: true, explanation: 'Yes.', source },
  {
    type: 'FILL_IN_THE_BLANK',
    stem: 'The storming of the Bastille took place in _____ {city}.',
    answerText: 'Paris: *the* city',
    acceptedAnswers: ['Paris'],
    explanation: 'Paris = capital # 1',
    source,
  },
  {
    type: 'SHORT_ANSWER',
    stem: 'What happened on 14 July? (answer: in ~ one line)',
    answerText: 'The storming of the Bastille, in Paris {1789}.',
    keyTerms: ['Bastille', 'Paris'],
    explanation: 'Line one\nline two: done',
    source,
  },
];

const generated = generateOffline({
  passages: COURSE_PASSAGES,
  questionCount: 20,
  types: ['MULTIPLE_CHOICE', 'TRUE_FALSE', 'SHORT_ANSWER', 'FILL_IN_THE_BLANK'],
  seed: 11,
}).questions;
const EXAMS: Exam[] = [
  { title: 'Hand-made <tricky> & "escaped" exam ~ {1}', questions: HANDMADE },
  { title: 'Generated exam', questions: generated },
];

// ---------------------------------------------------------------------------
// GIFT: a tiny importer following Moodle's qformat_gift (escapes to placeholders,
// `//` lines dropped, name between `::`, answers between the first `{` and `}`,
// general feedback after the last `####`, `~` means multiple choice).
// ---------------------------------------------------------------------------

interface GiftQuestion {
  name: string;
  text: string;
  kind: 'mc' | 'tf' | 'short';
  answers: { text: string; correct: boolean }[];
  tf?: boolean;
  feedback: string;
}

const PLACEHOLDERS: [string, string][] = [
  ['\\:', '\u0001'],
  ['\\#', '\u0002'],
  ['\\=', '\u0003'],
  ['\\{', '\u0004'],
  ['\\}', '\u0005'],
  ['\\~', '\u0006'],
  ['\\n', '\u0007'],
];
function pre(s: string): string {
  let out = s.replace(/\\\\/g, '\u0008');
  for (const [from, to] of PLACEHOLDERS) out = out.split(from).join(to);
  return out.replace(/\u0008/g, '\\');
}
function post(s: string): string {
  let out = s;
  for (const [from, to] of PLACEHOLDERS) out = out.split(to).join(from === '\\n' ? '\n' : from.slice(1));
  return out.trim();
}

function parseGift(file: string): GiftQuestion[] {
  const out: GiftQuestion[] = [];
  for (const block of file.split(/\n\s*\n/)) {
    const lines = block.split('\n').filter((l) => !l.trim().startsWith('//'));
    let text = pre(lines.join('\n').trim());
    if (!text) continue;
    expect(text.startsWith('::')).toBe(true);
    const nameEnd = text.indexOf('::', 2);
    const name = post(text.slice(2, nameEnd));
    text = text.slice(nameEnd + 2);
    const open = text.indexOf('{');
    const close = text.indexOf('}');
    expect(open).toBeGreaterThan(0);
    expect(close).toBe(text.length - 1); // nothing after the answer block: no "missing word" blank inserted
    let answers = text.slice(open + 1, close).trim();
    const qtext = post(text.slice(0, open).replace(/^\[plain\]/, ''));
    const gf = answers.lastIndexOf('####');
    const feedback = gf >= 0 ? post(answers.slice(gf + 4)) : '';
    if (gf >= 0) answers = answers.slice(0, gf).trim();
    if (answers === 'TRUE' || answers === 'FALSE') {
      out.push({ name, text: qtext, kind: 'tf', answers: [], tf: answers === 'TRUE', feedback });
    } else if (answers.includes('~')) {
      const parts = answers
        .replace(/=/g, '~=')
        .split('~')
        .map((p) => p.trim())
        .filter(Boolean);
      out.push({
        name,
        text: qtext,
        kind: 'mc',
        answers: parts.map((p) => ({ text: post(p.replace(/^=/, '')), correct: p.startsWith('=') })),
        feedback,
      });
    } else {
      const parts = answers
        .split('=')
        .map((p) => p.trim())
        .filter(Boolean);
      out.push({ name, text: qtext, kind: 'short', answers: parts.map((p) => ({ text: post(p), correct: true })), feedback });
    }
  }
  return out;
}

describe('toGift', () => {
  it('escapes every special character', () => {
    expect(escapeGift('a~b=c#d{e}f:g\\h')).toBe('a\\~b\\=c\\#d\\{e\\}f\\:g\\\\h');
    expect(escapeGift('one\ntwo\r\nthree')).toBe('one\\ntwo\\nthree');
    const gift = toGift(EXAMS[0]!);
    const body = gift
      .split('\n')
      .filter((l) => !l.startsWith('//'))
      .join('\n');
    // No unescaped special character inside texts: every ~ = # { } : in the body is escaped or structural.
    const unescaped = body.replace(/\\[\\~=#{}:n*]/g, '');
    for (const line of unescaped.split('\n')) {
      if (!line.trim()) continue;
      expect(line).toMatch(/^(::[^:~=#{}]*::\[plain\][^~=#{}:]*\{(TRUE|FALSE)?(####[^~=#{}:]*)?\}?|\t[=~][^~=#{}:]*|\t####[^~=#{}:]*|\})$/);
    }
  });

  it('round-trips through a GIFT reader: count, texts, options and keys', () => {
    for (const exam of EXAMS) {
      const parsed = parseGift(toGift(exam));
      expect(parsed).toHaveLength(exam.questions.length);
      exam.questions.forEach((q, i) => {
        const g = parsed[i]!;
        expect(g.name).toMatch(new RegExp(`^Q${String(i + 1).padStart(2, '0')} ${q.type}`));
        expect(g.text).toBe(q.stem.trim());
        expect(g.feedback).toBe(q.explanation.trim());
        if (q.type === 'MULTIPLE_CHOICE') {
          expect(g.kind).toBe('mc');
          expect(g.answers.map((a) => a.text)).toEqual(q.options);
          expect(g.answers.filter((a) => a.correct)).toHaveLength(1);
          expect(g.answers.findIndex((a) => a.correct)).toBe(q.answerIndex);
        } else if (q.type === 'TRUE_FALSE') {
          expect(g).toMatchObject({ kind: 'tf', tf: q.answerBool });
        } else {
          expect(g.kind).toBe('short');
          const expected = q.type === 'SHORT_ANSWER' ? [q.answerText] : [q.answerText, ...(q.acceptedAnswers ?? [])];
          // Short answers keep Moodle's wildcard escaped.
          expect(g.answers.map((a) => a.text.replace(/\\\*/g, '*'))).toEqual(expected);
        }
      });
    }
  });

  it('shows the blank of a fill-in question and carries the source page in a comment', () => {
    const gift = toGift(EXAMS[1]!);
    const fib = generated.find((q) => q.type === 'FILL_IN_THE_BLANK')!;
    expect(gift).toContain(escapeGift(fib.stem));
    expect(fib.stem).toContain('_____');
    const comments = gift.split('\n').filter((l) => l.startsWith('// source:'));
    expect(comments).toHaveLength(generated.length);
    generated.forEach((q, i) => expect(comments[i]).toContain(`page ${q.source.page}`));
    expect(gift).toMatch(/^\/\/ exam: Generated exam/);
  });
});

// ---------------------------------------------------------------------------
// Moodle XML and QTI: well-formed (our checker, and xmllint when installed) and structured.
// ---------------------------------------------------------------------------

const text = (el: XmlElement | undefined) => el?.text ?? '';

describe('toMoodleXml', () => {
  it('is well-formed, with CDATA that survives "]]>"', () => {
    expect(cdata('a]]>b')).toBe('<![CDATA[a]]]]><![CDATA[>b]]>');
    for (const exam of EXAMS) expect(() => parseXml(toMoodleXml(exam))).not.toThrow();
    const quiz = parseXml(toMoodleXml(EXAMS[0]!));
    const mc = findAll(quiz, 'question')[0]!;
    // Concatenated CDATA sections give back the HTML, "]]>" included.
    expect(text(child(child(mc, 'questiontext'), 'text'))).toBe(`<p>${escapeHtml(HANDMADE[0]!.stem)}</p>`);
    expect(text(child(child(mc, 'questiontext'), 'text'))).toContain(']]&gt;');
  });

  it('has the structure Moodle imports', () => {
    for (const exam of EXAMS) {
      const quiz = parseXml(toMoodleXml(exam));
      expect(quiz.name).toBe('quiz');
      const questions = findAll(quiz, 'question');
      expect(questions).toHaveLength(exam.questions.length);
      exam.questions.forEach((q, i) => {
        const x = questions[i]!;
        const type = {
          MULTIPLE_CHOICE: 'multichoice',
          TRUE_FALSE: 'truefalse',
          SHORT_ANSWER: 'shortanswer',
          FILL_IN_THE_BLANK: 'shortanswer',
        }[q.type];
        expect(x.attrs.type).toBe(type);
        expect(text(child(child(x, 'name'), 'text'))).toMatch(/^Q\d\d /);
        expect(child(x, 'questiontext')!.attrs.format).toBe('html');
        const feedback = text(child(child(x, 'generalfeedback'), 'text'));
        expect(feedback).toContain(escapeHtml(q.explanation));
        expect(feedback).toContain(`page ${q.source.page}`);
        expect(feedback).toContain(escapeHtml(q.source.sentence));
        const answers = x.children.filter((c) => c.name === 'answer');
        if (q.type === 'MULTIPLE_CHOICE') {
          expect(text(child(x, 'single'))).toBe('true');
          expect(text(child(x, 'shuffleanswers'))).toBe('true');
          expect(answers.map((a) => text(child(a, 'text')))).toEqual(q.options!.map((o) => `<p>${escapeHtml(o)}</p>`));
          expect(answers.map((a) => a.attrs.fraction)).toEqual(q.options!.map((_, j) => (j === q.answerIndex ? '100' : '0')));
        } else if (q.type === 'TRUE_FALSE') {
          expect(answers.map((a) => [text(child(a, 'text')), a.attrs.fraction])).toEqual([
            ['true', q.answerBool ? '100' : '0'],
            ['false', q.answerBool ? '0' : '100'],
          ]);
        } else {
          expect(answers.every((a) => a.attrs.fraction === '100')).toBe(true);
          expect(text(child(answers[0]!, 'text')).replace(/\\\*/g, '*')).toBe(q.answerText);
        }
        expect(findAll(x, 'tag').map((t) => text(child(t, 'text')))).toContain(`source-page:${q.source.page}`);
      });
    }
  });
});

describe('toQti', () => {
  it('produces a well-formed package: manifest, test and one item per question', () => {
    for (const exam of EXAMS) {
      const pkg = toQti(exam);
      const paths = pkg.files.map((f) => f.path);
      expect(paths).toEqual([
        'imsmanifest.xml',
        'assessmentTest.xml',
        ...exam.questions.map((_, i) => `items/Q${String(i + 1).padStart(2, '0')}.xml`),
      ]);
      for (const f of pkg.files) expect(() => parseXml(f.content)).not.toThrow();
      const manifest = parseXml(pkg.files[0]!.content);
      expect(manifest.name).toBe('manifest');
      const resources = findAll(manifest, 'resource');
      const ids = resources.map((r) => r.attrs.identifier);
      expect(new Set(ids).size).toBe(ids.length);
      for (const r of resources) expect(paths).toContain(r.attrs.href);
      const testRes = resources.find((r) => r.attrs.type === 'imsqti_test_xmlv2p1')!;
      expect(findAll(testRes, 'dependency').map((d) => d.attrs.identifierref)).toEqual(ids.filter((id) => id !== testRes.attrs.identifier));
      expect(resources.filter((r) => r.attrs.type === 'imsqti_item_xmlv2p1')).toHaveLength(exam.questions.length);

      const test = parseXml(pkg.files[1]!.content);
      expect(test).toMatchObject({ name: 'assessmentTest', attrs: { xmlns: QTI_NS } });
      const refs = findAll(test, 'assessmentItemRef');
      expect(new Set(refs.map((r) => r.attrs.identifier)).size).toBe(exam.questions.length);
      for (const r of refs) expect(paths).toContain(r.attrs.href);
    }
  });

  it('declares responses that match the interactions, with keys among the choices', () => {
    for (const exam of EXAMS) {
      const items = toQti(exam).files.slice(2);
      const identifiers = new Set<string>();
      exam.questions.forEach((q, i) => {
        const item = parseXml(items[i]!.content);
        expect(item.name).toBe('assessmentItem');
        expect(item.attrs.xmlns).toBe(QTI_NS);
        identifiers.add(item.attrs.identifier!);
        const decls = findAll(item, 'responseDeclaration');
        expect(decls).toHaveLength(1);
        const decl = decls[0]!;
        const correct = findAll(decl, 'value').map((v) => v.text);
        expect(correct).toHaveLength(1);
        const choice = findAll(item, 'choiceInteraction');
        const entry = findAll(item, 'textEntryInteraction');
        const rubric = findAll(item, 'rubricBlock')[0]!;
        expect(rubric.attrs.view).toBe('scorer');
        expect(
          findAll(rubric, 'p')
            .map((p) => p.text)
            .join(' '),
        ).toContain(`page ${q.source.page}`);
        expect(findAll(item, 'modalFeedback')[0]!.children[0]!.text).toBe(q.explanation);
        if (q.type === 'MULTIPLE_CHOICE' || q.type === 'TRUE_FALSE') {
          expect(choice).toHaveLength(1);
          expect(choice[0]!.attrs).toMatchObject({ responseIdentifier: decl.attrs.identifier, maxChoices: '1' });
          expect(decl.attrs).toMatchObject({ cardinality: 'single', baseType: 'identifier' });
          const simple = findAll(choice[0]!, 'simpleChoice');
          const ids = simple.map((c) => c.attrs.identifier);
          expect(new Set(ids).size).toBe(ids.length);
          expect(ids).toContain(correct[0]);
          if (q.type === 'MULTIPLE_CHOICE') {
            expect(simple.map((c) => c.text)).toEqual(q.options);
            expect(ids.indexOf(correct[0])).toBe(q.answerIndex);
          } else {
            expect(correct[0]).toBe(q.answerBool ? 'TRUE' : 'FALSE');
          }
        } else {
          expect(entry).toHaveLength(1);
          expect(entry[0]!.attrs.responseIdentifier).toBe(decl.attrs.identifier);
          expect(decl.attrs).toMatchObject({ cardinality: 'single', baseType: 'string' });
          expect(correct[0]).toBe(q.answerText);
          const keys = findAll(decl, 'mapEntry').map((m) => m.attrs.mapKey);
          expect(keys).toContain(q.answerText);
          if (q.type === 'FILL_IN_THE_BLANK') {
            // The interaction stands where the blank was.
            const p = findAll(item, 'p').find((x) => x.children.some((c) => c.name === 'textEntryInteraction'))!;
            expect(p.text).toBe(q.stem.replace('_____', ''));
          }
        }
      });
      expect(identifiers.size).toBe(exam.questions.length);
    }
  });
});

const XMLLINT = spawnSync('xmllint', ['--version'], { encoding: 'utf8' }).status === 0;
if (!XMLLINT) console.warn('skipped: the xmllint check of the XML exports — xmllint is absent (Debian package libxml2-utils)');
const withXmllint = XMLLINT ? describe : describe.skip;

withXmllint('exports checked by xmllint', () => {
  const dir = XMLLINT ? mkdtempSync(join(tmpdir(), 'exam-xml-')) : '';
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('finds the Moodle XML and every QTI file well-formed', () => {
    const files: [string, string][] = [];
    EXAMS.forEach((exam, e) => {
      files.push([`moodle-${e}.xml`, toMoodleXml(exam)]);
      toQti(exam).files.forEach((f, i) => files.push([`qti-${e}-${i}.xml`, f.content]));
    });
    for (const [name, content] of files) {
      const path = join(dir, name);
      writeFileSync(path, content);
      const r = spawnSync('xmllint', ['--noout', path], { encoding: 'utf8' });
      expect({ name, status: r.status, stderr: r.stderr }).toEqual({ name, status: 0, stderr: '' });
    }
  });
});
