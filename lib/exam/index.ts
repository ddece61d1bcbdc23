/** Exam generation, validation, grading, item analysis and exports (pure; no I/O). */
export * from './types.js';
export { generateOffline, generationStats, citation, MAX_QUESTIONS, type GenerationStats } from './offline.js';
export { validateQuestion, validateExam, nearDuplicate, maxKeysPerPosition, NEAR_DUPLICATE_JACCARD } from './validate.js';
export { gradeAnswer, matchesText, SHORT_ANSWER_PASS } from './grade.js';
export { itemAnalysis, pearson } from './analysis.js';
export { toGift, escapeGift } from './gift.js';
export { toMoodleXml } from './moodle-xml.js';
export { toQti, QTI_NS, type QtiPackage } from './qti.js';
export {
  MODEL_QUESTION_JSON_SCHEMA,
  MODEL_EXAM_JSON_SCHEMA,
  examResponseFormat,
  modelQuestionSchema,
  buildExamPrompt,
  passageNonce,
  fromModelQuestion,
  fromModelExam,
  balanceKeyPositions,
  type ModelQuestion,
  type ExamPromptOptions,
} from './model.js';
export { splitSentences } from './text.js';
