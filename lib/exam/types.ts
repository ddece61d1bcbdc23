/**
 * Contracts of exam generation: the passages questions are made from, the
 * question drafts (offline or model-made), validation issues, grading results,
 * item analysis and exports. Everything in lib/exam is pure: no I/O, no clock,
 * no Math.random (randomness comes from a seed).
 */

export const QUESTION_TYPES = ['MULTIPLE_CHOICE', 'TRUE_FALSE', 'SHORT_ANSWER', 'FILL_IN_THE_BLANK'] as const;
export type QuestionType = (typeof QUESTION_TYPES)[number];

export const DIFFICULTIES = ['EASY', 'MEDIUM', 'HARD'] as const;
export type Difficulty = (typeof DIFFICULTIES)[number];

/** A course passage (a chunk of a document) questions may be made from. */
export interface ExamPassage {
  chunkId: string;
  documentId: string;
  documentTitle: string;
  pageStart: number;
  pageEnd: number;
  text: string;
  /**
   * Optional: character offsets in `text` where pages pageStart+1, pageStart+2...
   * begin, ascending. When given, a question's `source.page` is the exact page of
   * its sentence; otherwise it is `pageStart`.
   */
  pageBreaks?: number[];
}

/** Where a question comes from: the passage and the exact sentence (a verbatim slice of the passage's text). */
export interface QuestionSource {
  chunkId: string;
  documentId: string;
  documentTitle: string;
  pageStart: number;
  pageEnd: number;
  /** The page of the sentence: exact when the passage has `pageBreaks` or a single page, else `pageStart`. */
  page: number;
  /** False when `page` is only the passage's first page (a multi-page passage without page breaks). */
  pageExact?: boolean;
  sentence: string;
}

export interface ExamQuestionDraft {
  type: QuestionType;
  /** What the student sees. FILL_IN_THE_BLANK stems hold one `_____`. */
  stem: string;
  /** MULTIPLE_CHOICE: exactly 4 options. */
  options?: string[];
  /** MULTIPLE_CHOICE: index of the key in `options`. */
  answerIndex?: number;
  /** FILL_IN_THE_BLANK: the blanked term; SHORT_ANSWER: the reference answer. */
  answerText?: string;
  /** FILL_IN_THE_BLANK: other accepted forms (e.g. a person's surname). */
  acceptedAnswers?: string[];
  /** SHORT_ANSWER: the terms a good answer mentions (each appears in the source sentence). */
  keyTerms?: string[];
  /** TRUE_FALSE: whether the statement in the stem is true. */
  answerBool?: boolean;
  /** Shown after grading. */
  explanation: string;
  source: QuestionSource;
}

export const VALIDATION_RULES = [
  /** A field is missing or has the wrong shape for its type. */
  'malformed',
  /** The cited passage does not exist, its fields differ, or the sentence is not in its text. */
  'source',
  /** The key (or a key term / the true statement) is not supported by the cited sentence. */
  'unsupported',
  /** MULTIPLE_CHOICE without exactly 4 non-empty options distinct after case/whitespace folding. */
  'options',
  /** Not exactly one correct option: index out of range, or a distractor also appears in the cited sentence. */
  'key',
  /** The stem gives the answer away (the key's normalised/stemmed form is in the stem). */
  'answer-in-stem',
  /** A distractor is not of the key's kind (numbers for numeric keys, years for years, words for words). */
  'distractor-kind',
  /** Two questions of an exam are near-duplicates. */
  'near-duplicate',
  /** MULTIPLE_CHOICE keys are not spread over positions A–D. */
  'key-balance',
  /** TRUE_FALSE keys are not roughly balanced. */
  'tf-balance',
] as const;
export type ValidationRule = (typeof VALIDATION_RULES)[number];

/** Reasons a candidate could not even be built (counted in `rejected` too). */
export const BUILD_RULES = [
  /** Fewer than 3 distractors of the key's kind in the course. */
  'no-distractors',
  /** No term of a usable kind in the sentence for this question type. */
  'no-key-term',
  /** Slots left unfilled once every usable sentence had been tried (how many questions are missing). */
  'material-exhausted',
] as const;
export type BuildRule = (typeof BUILD_RULES)[number];
export type RejectionRule = ValidationRule | BuildRule;

export interface ValidationIssue {
  rule: ValidationRule;
  message: string;
  /** Exam-level issues: the indices of the questions concerned. */
  questions?: number[];
}

/** Why a sentence of a passage was not used. */
export const SENTENCE_SKIP_REASONS = [
  'heading',
  'fragment',
  'question',
  'too-short',
  'too-long',
  'reference',
  'numeric',
  'context-dependent',
  'no-key-terms',
] as const;
export type SentenceSkipReason = (typeof SENTENCE_SKIP_REASONS)[number];

export interface GenerateOptions {
  passages: ExamPassage[];
  /** 1..50. */
  questionCount: number;
  /** Non-empty; the exam mixes them as evenly as the material allows. */
  types: QuestionType[];
  difficulty?: Difficulty;
  /** Same seed, same passages, same options: same exam. */
  seed: number;
  /** Called each time a question is kept. */
  onProgress?: (made: number, target: number) => void;
}

export interface GenerateResult {
  questions: ExamQuestionDraft[];
  /** Candidates rejected, by rule. */
  rejected: Partial<Record<RejectionRule, number>>;
  /** Candidate questions built and checked (kept + rejected by validation). */
  candidates: number;
  /** The sentences considered. */
  sentences: { total: number; usable: number; skipped: Partial<Record<SentenceSkipReason, number>> };
}

/** An answer: MULTIPLE_CHOICE an option index, TRUE_FALSE a boolean, the others text. */
export type ExamAnswer = number | boolean | string | null | undefined;

export interface GradeResult {
  correct: boolean;
  /** 0..1. */
  score: number;
  feedback: string;
  /** SHORT_ANSWER: key terms found in / missing from the answer. */
  matchedKeyTerms?: string[];
  missingKeyTerms?: string[];
}

export interface Exam {
  title: string;
  questions: ExamQuestionDraft[];
}

/** One response of one attempt to one question, for item analysis. */
export interface ItemResponse {
  /** Index of the question in the exam. */
  question: number;
  /** Points earned on the item, usually 0 or 1 (correct). */
  score: number;
  /** MULTIPLE_CHOICE / TRUE_FALSE: the option chosen (TRUE_FALSE: 0 = true, 1 = false); null or absent when omitted. */
  optionIndex?: number | null;
}

export interface SubmittedAttempt {
  /** The attempt's total, in the same points as item scores; default: the sum of its item scores. */
  totalScore?: number;
  responses: ItemResponse[];
}

export interface ItemStatistics {
  question: number;
  /** Attempts that answered this item. */
  responses: number;
  /** Share correct (mean item score / max item score), 0..1; null without responses. */
  difficulty: number | null;
  /**
   * Corrected item-total correlation: Pearson (point-biserial for 0/1 items) of
   * the item score with the attempt total minus this item's score; null when
   * either has no variance (or fewer than 2 responses).
   */
  discrimination: number | null;
  /** The uncorrected point-biserial (item score with the attempt total, item included). */
  pointBiserialUncorrected: number | null;
  /** How often each option was chosen (by option index); `omitted` counts responses without one. */
  optionCounts: number[];
  omitted: number;
}

/** A chat message as lib/model's chat takes them. */
export interface PromptMessage {
  role: 'system' | 'user';
  content: string;
}
