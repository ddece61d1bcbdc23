/**
 * The tutor's pure layer: no I/O, no clock, no randomness. Everything here is a function of its
 * arguments; the database, retrieval, the model call, streaming and the GraphQL API are built
 * around it (contracts in ./types.ts).
 *
 * One turn of a conversation:
 *
 *   1. Make the question standalone (a follow-up leans on the conversation):
 *        offline:  q = standaloneQuestion(question, history)
 *        model:    reply = model(rewriteMessages(question, history))
 *                  q = cleanRewrite(reply, question, history)    // falls back to the offline rule
 *      (`history` is the conversation before the question, oldest first.)
 *   2. Retrieve passages for `q` and number them from 1 (`TutorPassage.n`).
 *   3. cov = coverage(q, passages). If !cov.covered → notCoveredAnswer(): no model call.
 *      Record cov.score (0..1) to tune COVERAGE_THRESHOLD; see coverage.ts for the rule.
 *   4. Answer:
 *        offline:  EXPLAIN → extractiveAnswer(q, passages); SOCRATIC → socraticHint(q, passages)
 *                  (or answerOffline({ question, history, passages, mode }) for steps 1, 3 and 4)
 *        model:    content = model(answerMessages({ question: q, passages, history, mode, maxHistoryTokens }))
 *                  answer = groundAnswer(content, passages)       // markers checked, quotes picked
 *      Cache model answers under PROMPT_VERSION (it changes with any prompt text).
 *
 * API
 *
 * sentences.ts
 *   splitSentences(text: string): Sentence[]          // { text, start, end, heading }, offsets into text
 *   normalizeSentence(raw: string): string; joinHyphenated(text: string): string
 * coverage.ts
 *   coverage(question: string, passages: readonly TutorPassage[], opts?: { threshold?: number }): CoverageResult
 *     // { covered, score, bestPassage?, terms: { term, weight }[], matched, threshold }
 *     // covered ⇔ score ≥ threshold, ≥ 2 of the question's terms (its only one, if one) in that passage,
 *     // and a name the student wrote within 2 sentences of another of its terms
 *   COVERAGE_THRESHOLD: number                        // 0.5
 *   MISSING_COMMON_WEIGHT, MISSING_SPECIFIC_WEIGHT, WINDOW_SENTENCES: number   // 0.25, 2, 2
 *   passageTerms(passage: TutorPassage): ReadonlySet<string>   // remembered for the last 2,000 passages
 * offline.ts
 *   extractiveAnswer(question: string, passages: readonly TutorPassage[], opts?: { maxSentences?: number }): GroundedAnswer
 *   socraticHint(question: string, passages: readonly TutorPassage[]): GroundedAnswer
 *   notCoveredAnswer(): GroundedAnswer
 *   answerOffline(turn: OfflineTurn): { question: string; coverage: CoverageResult; answer: GroundedAnswer }
 *   rankSentences(question, passages): ScoredSentence[]; selectSentences(ranked, maxSentences): ScoredSentence[]
 *   NOT_COVERED_TEXT, EXTRACTIVE_LEAD, BLANK
 * followup.ts
 *   standaloneQuestion(question: string, history: readonly HistoryTurn[]): string
 *   isFollowUp(question: string): boolean
 *   splitStandalone(standalone: string): { question: string; carried: string[] }
 *   rewriteMessages(question: string, history: readonly HistoryTurn[], opts?: { maxHistoryTokens?: number }): ChatMessage[]
 *   cleanRewrite(reply: string, question: string, history: readonly HistoryTurn[]): string
 * citations.ts
 *   groundAnswer(content: string, passages: readonly TutorPassage[]): GroundedAnswer
 *   checkMarkers(content, passages): { content: string; dropped: number; markers: { at: number; indices: number[] }[] }
 *   bestQuote(passage: TutorPassage, carriers: readonly string[]): string
 * prompt.ts
 *   answerMessages(input: { question; passages; history?; mode; maxHistoryTokens? }): ChatMessage[]
 *   PROMPT_VERSION: string; SYSTEM_PROMPTS: Record<TutorMode, string>; REWRITE_SYSTEM_PROMPT: string
 *   DEFAULT_MAX_HISTORY_TOKENS: number                // 1500
 *   approxTokens(text): number                        // ceil(chars / 4)
 *   boundHistory(history, maxTokens): HistoryTurn[]; passageElement(passage): string
 *   escapeText(text): string; escapeAttribute(text): string; stripCitationMarkers(text): string; pageLabel(passage): string
 * terms.ts
 *   terms(text): string[]; questionTerms(question): string[]; specificTerms(text): Set<string>
 *   rarity(term, specific?): number; sameTerm(a, b): boolean; hasTerm(set, term): boolean; cosine(a, b): number
 *   SYNONYM_GROUPS: string[][]                        // everyday synonyms, the same term for sameTerm/hasTerm
 *
 * socraticHint tags the hint sentence's words with compromise (already a dependency) to prefer
 * nouns, names, numbers and dates as the blanked answer term; nothing else needs it.
 */
export * from './types.js';
export { joinHyphenated, normalizeSentence, splitSentences, type Sentence } from './sentences.js';
export {
  COVERAGE_THRESHOLD,
  coverage,
  MISSING_COMMON_WEIGHT,
  MISSING_SPECIFIC_WEIGHT,
  passageTerms,
  WINDOW_SENTENCES,
  type CoverageOptions,
  type CoverageResult,
} from './coverage.js';
export {
  answerOffline,
  BLANK,
  EXTRACTIVE_LEAD,
  extractiveAnswer,
  NOT_COVERED_TEXT,
  notCoveredAnswer,
  OFFLINE_VERSION,
  rankSentences,
  selectSentences,
  socraticHint,
  type ExtractiveOptions,
  type OfflineTurn,
  type ScoredSentence,
} from './offline.js';
export {
  cleanRewrite,
  DEFAULT_REWRITE_HISTORY_TOKENS,
  isFollowUp,
  MAX_CARRIED_WORDS,
  rewriteMessages,
  splitStandalone,
  standaloneQuestion,
  type RewriteOptions,
} from './followup.js';
export { bestQuote, checkMarkers, groundAnswer, type PlacedMarker } from './citations.js';
export {
  answerMessages,
  approxTokens,
  boundHistory,
  DEFAULT_MAX_HISTORY_TOKENS,
  escapeAttribute,
  escapeText,
  pageLabel,
  passageElement,
  PROMPT_VERSION,
  REWRITE_SYSTEM_PROMPT,
  stripCitationMarkers,
  SYSTEM_PROMPTS,
  type AnswerPromptInput,
} from './prompt.js';
export { cosine, hasTerm, questionTerms, rarity, sameTerm, specificTerms, SYNONYM_GROUPS, terms } from './terms.js';
