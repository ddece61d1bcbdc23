/**
 * Conversation memory: a follow-up ("and when did that happen?", "why is it important?",
 * "what about its second law?") is made standalone before retrieval.
 *
 * Offline (`standaloneQuestion`), by carrying the key words of the previous question. A
 * question leans on the conversation (`isFollowUp`) when:
 *   - it opens with a continuation: "and", "but", "so", "then", "also", "or", "what about",
 *     "how about", "what else", "what if", "why not", "in that case"; or
 *   - it has no content words of its own ("why?", "tell me more", "why is it important?"); or
 *   - it has at most one content word, not a name or number, and opens with "why", "how",
 *     "when", "where" or "who" ("how come?", "why was he executed?"; not "who was Newton?"); or
 *   - it has at most two content words and a pronoun or demonstrative that points back: it,
 *     its, they, them, their, he, him, his, she, her, this, these, those, and "that" used as a
 *     pronoun (first or last word, or after a verb or preposition: "did that", "about that").
 * A question with more words of its own is taken as standalone even with a pronoun ("why do
 * plants need light for their food?"): carrying the previous topic into a new, self-contained
 * question would pull retrieval and coverage off course, while a self-contained question that
 * misses its antecedent still retrieves on its own words.
 *
 * The carried words are the content words of the previous question as the student wrote them
 * (itself made standalone first, so a chain of follow-ups keeps its topic), without those the
 * follow-up already has (and without an ordinal when the follow-up names another: "what
 * about its second law?" after "Newton's first law"), at most `MAX_CARRIED_WORDS`; they are appended as
 * "<question> (about: <words>)". With no previous question the question is returned trimmed.
 *
 * With a model (`rewriteMessages`), the model rewrites the question; `cleanRewrite` checks its
 * reply and falls back to `standaloneQuestion`.
 */
import { words } from '../search/lexical.js';
import { approxTokens, escapeText, REWRITE_SYSTEM_PROMPT, stripCitationMarkers } from './prompt.js';
import { questionTerms, specificTerms, terms } from './terms.js';
import type { ChatMessage, HistoryTurn } from './types.js';

/** At most this many words are carried from the previous question. */
export const MAX_CARRIED_WORDS = 6;
/** Default history budget for the rewrite prompt, in approximate tokens. */
export const DEFAULT_REWRITE_HISTORY_TOKENS = 600;
/** A tutor turn is cut to this many characters in the rewrite prompt (its opening says what it was about). */
const MAX_TUTOR_TURN_CHARS = 600;
/** How many of the latest student turns are replayed to find the topic of a chain of follow-ups. */
const MAX_REPLAYED_TURNS = 8;

const CONTINUATION = /^(?:and|but|so|then|also|or|what about|how about|what else|what if|why not|in that case)\b/iu;
const WH_OPENING = /^(?:why|how|when|where|who)\b/iu;
const POINTING = new Set([
  'it',
  'its',
  'itself',
  'they',
  'them',
  'their',
  'theirs',
  'he',
  'him',
  'his',
  'she',
  'her',
  'hers',
  'this',
  'these',
  'those',
]);
/** Words after which "that" is a pronoun ("did that", "about that"), not a relative ("the force that"). */
const BEFORE_PRONOUN_THAT = new Set(
  'is was are were be been do does did has had have about of after before from by with to in on for like than cause caused causes mean means meant explain happen happened'.split(
    ' ',
  ),
);
/** "it" as a dummy subject does not point back ("what is it called when…", "is it true that…"). */
const DUMMY_IT = /\b(?:is|was) it (?:called|true|possible|necessary)\b|\bit(?:'s| is| was) (?:called|true|possible|necessary)\b/iu;

/** Whether the question leans on the conversation (see the rules at the top of this file). */
export function isFollowUp(question: string): boolean {
  const q = question.trim().replace(/^[^\p{L}\p{N}]+/u, '');
  if (CONTINUATION.test(q)) return true;
  const own = questionTerms(q).length;
  if (own === 0) return true;
  if (own <= 1 && WH_OPENING.test(q) && specificTerms(q).size === 0) return true;
  if (own > 2) return false;
  const ws = words(q);
  const dummyIt = DUMMY_IT.test(q);
  return ws.some((w, i) => {
    if (w === 'it' && dummyIt) return false;
    if (POINTING.has(w)) return true;
    if (w !== 'that') return false;
    return i === 0 || i === ws.length - 1 || BEFORE_PRONOUN_THAT.has(ws[i - 1]!);
  });
}

/** The content words of a text as written (a word counts when it yields a question term), in order, distinct by term. */
function contentWords(text: string): string[] {
  const wanted = new Set(questionTerms(text));
  const seen = new Set<string>();
  const out: string[] = [];
  for (const m of text.matchAll(/[\p{L}\p{N}\p{M}_]+(?:['’]\p{L}+)?/gu)) {
    const word = m[0].replace(/['’]s$/u, '');
    const t = terms(word);
    if (t.length !== 1 || !wanted.has(t[0]!) || seen.has(t[0]!)) continue;
    seen.add(t[0]!);
    out.push(word);
  }
  return out;
}

const ORDINAL = /^(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|last|next|\d+(?:st|nd|rd|th))$/iu;
const isOrdinal = (word: string) => ORDINAL.test(word);

/** The topic words of a question given the topic of the one before (offline follow-up handling). */
function topicOf(question: string, previous: readonly string[]): { own: string[]; topic: string[] } {
  const own = contentWords(question);
  if (!isFollowUp(question) || previous.length === 0) return { own, topic: own };
  const have = new Set(own.flatMap((w) => terms(w)));
  // "what about its second law?" after "Newton's first law": the new ordinal replaces the old one.
  const replacesOrdinal = own.some(isOrdinal);
  const carried = previous
    .filter((w) => !terms(w).some((t) => have.has(t)) && !(replacesOrdinal && isOrdinal(w)))
    .slice(0, MAX_CARRIED_WORDS);
  return { own, topic: [...own, ...carried] };
}

/**
 * The question made standalone offline: unchanged (trimmed) unless it is a follow-up, then
 * followed by " (about: …)" with the previous question's key words. `history` is the
 * conversation before the question, oldest first, without the question itself.
 */
export function standaloneQuestion(question: string, history: readonly HistoryTurn[]): string {
  const trimmed = question.trim();
  const studentTurns = history.filter((t) => t.role === 'USER').slice(-MAX_REPLAYED_TURNS);
  let previous: string[] = [];
  for (const turn of studentTurns) previous = topicOf(turn.content, previous).topic;
  if (!isFollowUp(trimmed) || previous.length === 0) return trimmed;
  const { own, topic } = topicOf(trimmed, previous);
  const carried = topic.slice(own.length);
  return carried.length > 0 ? `${trimmed} (about: ${carried.join(' ')})` : trimmed;
}

const ABOUT = /\s*\(about: ([^()]*)\)$/u;

/** Splits a `standaloneQuestion` result into the student's question and the carried words. */
export function splitStandalone(standalone: string): { question: string; carried: string[] } {
  const m = ABOUT.exec(standalone);
  if (!m) return { question: standalone, carried: [] };
  return { question: standalone.slice(0, m.index), carried: m[1]!.split(/\s+/u).filter((w) => w !== '') };
}

export interface RewriteOptions {
  /** Budget for the conversation, in approximate tokens (ceil(chars / 4)). Default `DEFAULT_REWRITE_HISTORY_TOKENS`. */
  maxHistoryTokens?: number;
}

function clip(text: string, max: number): string {
  const t = text.trim();
  return t.length <= max ? t : `${t.slice(0, max).replace(/\s+\S*$/u, '')} …`;
}

/**
 * The messages asking a model to rewrite the question as a standalone one: `REWRITE_SYSTEM_PROMPT`,
 * then one user message with the conversation (newest turns within the budget, tutor turns cut
 * to their opening and stripped of `[n]` markers) and the question, each escaped inside its tags.
 * Send the reply through `cleanRewrite`.
 */
export function rewriteMessages(question: string, history: readonly HistoryTurn[], opts: RewriteOptions = {}): ChatMessage[] {
  const budget = opts.maxHistoryTokens ?? DEFAULT_REWRITE_HISTORY_TOKENS;
  const turns: string[] = [];
  let used = 0;
  for (let i = history.length - 1; i >= 0; i--) {
    const turn = history[i]!;
    const text = turn.role === 'USER' ? turn.content.trim() : clip(stripCitationMarkers(turn.content), MAX_TUTOR_TURN_CHARS);
    const cost = approxTokens(text);
    if (used + cost > budget) break;
    used += cost;
    turns.unshift(`<turn role="${turn.role === 'USER' ? 'student' : 'tutor'}">${escapeText(text)}</turn>`);
  }
  const user = ['<conversation>', ...turns, '</conversation>', '', `<message>${escapeText(question.trim())}</message>`].join('\n');
  return [
    { role: 'system', content: REWRITE_SYSTEM_PROMPT },
    { role: 'user', content: user },
  ];
}

/**
 * The standalone question from the model's reply to `rewriteMessages`: its first non-empty
 * line, without a "Standalone question:" label, quotes or tags. Falls back to
 * `standaloneQuestion(question, history)` when the reply is empty, has no content words, or is
 * far longer than a question (the model answered instead of rewriting).
 */
export function cleanRewrite(reply: string, question: string, history: readonly HistoryTurn[]): string {
  const line =
    reply
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l !== '') ?? '';
  const cleaned = line
    .replace(/^(?:standalone\s+question|rewritten\s+question|question)\s*:\s*/iu, '')
    .replace(/<\/?(?:message|question)>/giu, '')
    .replace(/^["'“”‘’]+|["'“”‘’]+$/gu, '')
    .trim();
  const tooLong = cleaned.length > Math.max(300, 3 * question.trim().length);
  if (cleaned === '' || tooLong || questionTerms(cleaned).length === 0) return standaloneQuestion(question, history);
  return cleaned;
}
