/**
 * How `npm run eval:tutor` scores an answer (pure; see the rules in scripts/eval-tutor.ts).
 */
import { quantile } from '../lib/ir-metrics.js';
import { HALF, HALVES, type Half } from './documents.js';
import type { EvalQuestion, QuestionKind } from './questions.js';

/** The final message of an answer, as the API returns it. */
export interface AnswerView {
  id: string;
  status: string;
  mode: string;
  content: string;
  grounded: boolean | null;
  engine: string | null;
  citations: { index: number; pageStart: number; pageEnd: number; quote: string }[];
  conversation: { id: string };
}

export const KINDS: readonly QuestionKind[] = ['fact', 'off-topic', 'follow-up', 'socratic'];

/** The share of each kind that must pass (follow-ups are held to the fact target). */
export const TARGETS: Readonly<Record<QuestionKind, number>> = {
  fact: 0.85,
  'off-topic': 0.8,
  'follow-up': 0.85,
  socratic: 0.9,
};

export interface Score {
  pass: boolean;
  /** Why it failed (empty when it passed). */
  reasons: string[];
}

const norm = (text: string) => text.replace(/[’‘]/gu, "'").replace(/\s+/gu, ' ').toLowerCase();
const has = (text: string, needle: string) => norm(text).includes(norm(needle));

const citesPage = (answer: AnswerView, pages: readonly number[]) =>
  answer.citations.some((c) => pages.some((p) => c.pageStart <= p && p <= c.pageEnd));

/** Whether the text says "page N" (or "pages N–M" spanning N) for one of `pages`. */
export function mentionsPage(text: string, pages: readonly number[]): boolean {
  for (const m of text.matchAll(/\bpages?\s+(\d+)(?:\s*[–-]\s*(\d+))?/giu)) {
    const from = Number(m[1]);
    const to = m[2] ? Number(m[2]) : from;
    if (pages.some((p) => from <= p && p <= to)) return true;
  }
  return false;
}

function factReasons(q: EvalQuestion, a: AnswerView): string[] {
  const reasons: string[] = [];
  if (a.status !== 'COMPLETE') reasons.push(`status ${a.status}`);
  if (a.grounded !== true) reasons.push('not grounded');
  const missing = (q.allOf ?? []).filter((k) => !has(a.content, k));
  if (missing.length) reasons.push(`missing ${missing.map((k) => `"${k}"`).join(', ')}`);
  if (q.anyOf?.length && !q.anyOf.some((k) => has(a.content, k))) reasons.push(`none of ${q.anyOf.map((k) => `"${k}"`).join(' | ')}`);
  if (!citesPage(a, q.pages ?? [])) reasons.push(`no citation on page ${(q.pages ?? []).join('/')}`);
  return reasons;
}

/** Scores one answer against its question's rule. */
export function scoreAnswer(q: EvalQuestion, a: AnswerView): Score {
  let reasons: string[];
  switch (q.kind) {
    case 'fact':
    case 'follow-up':
      reasons = factReasons(q, a);
      break;
    case 'off-topic':
      reasons = [];
      if (a.status !== 'COMPLETE') reasons.push(`status ${a.status}`);
      if (a.grounded !== false) reasons.push('answered (grounded)');
      if (a.citations.length > 0) reasons.push(`${a.citations.length} citation(s)`);
      break;
    case 'socratic': {
      reasons = [];
      const pages = q.pages ?? [];
      if (a.status !== 'COMPLETE') reasons.push(`status ${a.status}`);
      if (a.grounded !== true) reasons.push('not grounded');
      if (!citesPage(a, pages)) reasons.push(`no citation on page ${pages.join('/')}`);
      if (!mentionsPage(a.content, pages)) reasons.push(`does not say "page ${pages.join('/')}"`);
      const hidden = q.hidden ?? '';
      if (hidden && has(a.content, hidden)) reasons.push(`gives away "${hidden}"`);
      else if (hidden && a.citations.some((c) => has(c.quote, hidden))) reasons.push(`a quote gives away "${hidden}"`);
      break;
    }
  }
  return { pass: reasons.length === 0, reasons };
}

export interface Result {
  question: EvalQuestion;
  half: Half;
  answer: AnswerView;
  /** The answer to `question.previous` (follow-ups). */
  previous?: AnswerView;
  score: Score;
  /** From the askTutor request to the final message. */
  latencyMs: number;
}

export interface Share {
  passed: number;
  total: number;
  share: number;
}

const share = (rs: readonly Result[]): Share => {
  const passed = rs.filter((r) => r.score.pass).length;
  return { passed, total: rs.length, share: rs.length ? passed / rs.length : NaN };
};

export interface Summary {
  /** Per kind: each half and both together. */
  shares: Record<QuestionKind, Record<Half | 'all', Share>>;
  /** Every kind with questions meets its target, over all the questions given. */
  met: boolean;
  latencyP50Ms: number;
  latencyP95Ms: number;
}

export function summarise(results: readonly Result[], latencies: readonly number[] = results.map((r) => r.latencyMs)): Summary {
  const shares = Object.fromEntries(
    KINDS.map((kind) => {
      const of = results.filter((r) => r.question.kind === kind);
      const byHalf = HALVES.map((h) => [h, share(of.filter((r) => r.half === h))]);
      return [kind, Object.fromEntries([...byHalf, ['all', share(of)]])];
    }),
  ) as Summary['shares'];
  const met = KINDS.every((k) => shares[k].all.total === 0 || shares[k].all.share >= TARGETS[k]);
  return { shares, met, latencyP50Ms: quantile([...latencies], 0.5), latencyP95Ms: quantile([...latencies], 0.95) };
}

export const halfOf = (q: EvalQuestion): Half => HALF[q.material];
