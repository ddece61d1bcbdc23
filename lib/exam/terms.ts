/**
 * Key terms of a sentence, found with `compromise` (part-of-speech tags) plus a
 * few rules of our own, each with a kind so that distractors can be of the same
 * kind: years, numbers, people, places, organisations, events, celestial bodies,
 * acronyms, other named terms, defined concepts and other noun phrases.
 *
 * compromise tags tokens (Person, Place, Organization, Value, Copula...); its own
 * entity spans miss many names (e.g. "Maximilien Robespierre"), so named terms
 * are runs of capitalised tokens classified here: a compromise Person/Place/
 * Organization tag, a head word (Assembly, Battle, Cathedral...), or — for a
 * run of 2–4 capitalised words not after an article and followed by a verb —
 * a person. Numbers are read with a regular expression (compromise splits
 * "150 million" and merges dates), years being integers 1000–2100 not followed
 * by a unit noun; day-of-month numbers and numbers after "Table"/"page" are
 * skipped.
 */
import nlp from 'compromise';
import { ENGLISH_STOP_WORDS } from '../search/lexical.js';
import { fold, plainWords, terms } from './text.js';

export const TERM_KINDS = [
  'YEAR',
  'NUMBER',
  'PERSON',
  'PLACE',
  'ORGANIZATION',
  'EVENT',
  'CELESTIAL',
  'ACRONYM',
  'NAMED',
  'CONCEPT',
  'NOUN_PHRASE',
] as const;
export type TermKind = (typeof TERM_KINDS)[number];

export const NUMERIC_KINDS: ReadonlySet<TermKind> = new Set(['YEAR', 'NUMBER']);
export const NAMED_KINDS: ReadonlySet<TermKind> = new Set(['PERSON', 'PLACE', 'ORGANIZATION', 'EVENT', 'CELESTIAL', 'ACRONYM', 'NAMED']);

export interface KeyTerm {
  /** Exact slice of the sentence. */
  text: string;
  /** Offsets in the sentence. */
  start: number;
  end: number;
  kind: TermKind;
  /** The form shown as an option: common nouns lower-cased at the sentence start. */
  display: string;
  /** Identity for distinctness: folded text; a person's surname. */
  identity: string;
  plural: boolean;
  words: number;
  /** Numbers: value (scale applied), decimals, thousands separators, scale word, the unit word after it. */
  value?: number;
  decimals?: number;
  grouping?: boolean;
  scale?: string;
  unit?: string;
  /** Subject of a definitional sentence ("X is/are ..."). */
  definitional?: boolean;
  /** How informative it is as a key, 0..1. */
  weight: number;
}

interface Token {
  text: string;
  start: number;
  end: number;
  tags: Set<string>;
  pre: string;
  post: string;
}

const UNITS = new Set(
  'm km cm mm kg g mg s ms h min l ml k c f metre metres meter meters kilometre kilometres kilometer kilometers mile miles kilogram kilograms gram grams tonne tonnes ton tons second seconds minute minutes hour hours day days week weeks year years percent per degrees volts watts joules newtons pascals'.split(
    ' ',
  ),
);
const MONTHS = new Set('january february march april may june july august september october november december'.split(' '));
const SCALES: Record<string, number> = { thousand: 1e3, million: 1e6, billion: 1e9, trillion: 1e12 };
const CONNECTORS = new Set(['of', 'von', 'van', 'de', 'der', 'den', 'du', 'la', 'le', 'da', 'di', 'del']);
const NAME_PARTICLES = new Set(['von', 'van', 'de', 'der', 'den', 'du', 'da', 'di', 'del', 'la', 'le']);
const ORG_HEADS = new Set(
  'assembly committee congress convention directory council parliament estate estates academy society party church company university army armée navy court senate republic empire kingdom monarchy government ministry union league institute school college bank'.split(
    ' ',
  ),
);
const EVENT_HEADS = new Set('revolution war battle siege treaty terror reign coup crisis rebellion revolt massacre era age'.split(' '));
const PLACE_HEADS = new Set(
  'cathedral island islands river mountain mountains sea ocean palace street square bridge lake valley desert bay castle tower abbey city county province'.split(
    ' ',
  ),
);
const CELESTIAL = new Set('sun moon earth mercury venus mars jupiter saturn uranus neptune pluto milky'.split(' '));
const ROMAN = /^(?:[IVXLC]+)$/;
const TITLES = new Set(
  'king queen duke duchess emperor empress prince princess pope lord lady sir count countess baron tsar czar president general admiral captain professor'.split(
    ' ',
  ),
);
/** Common nouns too vague to ask about on their own. */
const GENERIC_NOUNS = new Set(
  (
    'thing things part parts way ways number numbers place places people person persons object objects body bodies half order pair pairs ' +
    'value values rate kind kinds type types form forms set lot side sides end ends use uses result results time times year years day days ' +
    'example examples case cases fact facts point points term terms unit units area areas amount amounts level levels most many some ' +
    'others other one ones group groups member members power state states role roles effect effects idea ideas shape size top bottom ' +
    'first second third half direction directions position positions process study studies model models name names percent best'
  ).split(' '),
);
const WEAK_ADJECTIVES = new Set(
  'most many some other such same due several few whole certain different main various own only much more less own total'.split(' '),
);

const tokenCache = new Map<string, Token[]>();

/** compromise's tokens of a text (memoised: the analysis runs twice over a course). */
function tokensOf(sentence: string): Token[] {
  const hit = tokenCache.get(sentence);
  if (hit) return hit;
  const out = tokenize(sentence);
  if (tokenCache.size > 20000) tokenCache.clear();
  tokenCache.set(sentence, out);
  return out;
}

function tokenize(sentence: string): Token[] {
  const out: Token[] = [];
  for (const s of nlp(sentence).json({ offset: true }) as { terms: unknown[] }[]) {
    for (const raw of s.terms as { text: string; pre: string; post: string; tags: string[]; offset: { start: number; length: number } }[]) {
      if (!raw.text) continue;
      const start = raw.offset.start;
      out.push({ text: raw.text, start, end: start + raw.offset.length, tags: new Set(raw.tags), pre: raw.pre, post: raw.post });
    }
  }
  return out;
}

const isUpper = (s: string) => /^\p{Lu}/u.test(s);
const has = (t: Token | undefined, ...tags: string[]) => !!t && tags.some((x) => t.tags.has(x));
const stripPossessive = (s: string) => s.replace(/['\u2019]s$/u, '').replace(/['\u2019]$/u, '');
const joinable = (post: string) => /^[\s-]*$/.test(post) && post.length <= 2;

function numberTerms(sentence: string, tokens: Token[]): KeyTerm[] {
  const out: KeyTerm[] = [];
  const re = /(?<![\w.,-])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?:\s+(thousand|million|billion|trillion))?(?![\w%]|[.,]\d)/g;
  for (let m = re.exec(sentence); m; m = re.exec(sentence)) {
    const start = m.index;
    const end = start + m[0].length;
    const intPart = m[1]!;
    const frac = m[2];
    const scale = m[3];
    const grouping = intPart.includes(',');
    const base = Number(intPart.replace(/,/g, '') + (frac ? `.${frac}` : ''));
    const before = sentence.slice(0, start);
    const after = sentence.slice(end);
    const prevWord = (/(\S+)\s*$/.exec(before)?.[1] ?? '').toLowerCase().replace(/[^\p{L}.]/gu, '');
    const nextWordRaw = /^\s*([\p{L}][\p{L}'-]*)/u.exec(after)?.[1] ?? '';
    const nextWord = nextWordRaw.toLowerCase();
    if (/^(?:table|figure|fig\.|chapter|section|page|p\.|pp\.|no\.|vol\.|eq\.)$/.test(prevWord)) continue;
    if (!frac && !grouping && base <= 31 && (MONTHS.has(nextWord) || MONTHS.has(prevWord))) continue;
    if (!frac && !grouping && base <= 31 && !scale && isUpper(nextWordRaw)) continue;
    const nextToken = tokens.find((t) => t.start >= end);
    const unitLike =
      !!nextWord &&
      nextWordRaw === nextWord &&
      !ENGLISH_STOP_WORDS.has(nextWord) &&
      (UNITS.has(nextWord) || (nextWord.length >= 4 && /s$/.test(nextWord) && !/(?:ss|us|is)$/.test(nextWord)));
    const followedByNoun = !scale && ((has(nextToken, 'Noun') && !has(nextToken, 'ProperNoun', 'Date', 'Month') && !!nextWord) || unitLike);
    const isYear = !frac && !grouping && !scale && base >= 1000 && base <= 2100 && intPart.length === 4 && !followedByNoun;
    const value = base * (scale ? SCALES[scale]! : 1);
    const unit = !isYear && nextWord && !['and', 'or', 'to', 'in', 'of', 'the', 'a', 'an'].includes(nextWord) ? nextWord : undefined;
    out.push({
      text: m[0],
      start,
      end,
      kind: isYear ? 'YEAR' : 'NUMBER',
      display: m[0],
      identity: String(value),
      plural: false,
      words: m[0].split(/\s+/).length,
      value,
      decimals: frac?.length ?? 0,
      grouping,
      ...(scale ? { scale } : {}),
      ...(unit ? { unit } : {}),
      weight: isYear ? 1 : unit ? 0.85 : 0.6,
    });
  }
  return out;
}

function namedTerms(sentence: string, tokens: Token[], known: ReadonlyMap<string, TermKind>): KeyTerm[] {
  const out: KeyTerm[] = [];
  const capital = (t: Token, i: number): boolean => {
    if (!isUpper(t.text) || has(t, 'Pronoun', 'Determiner', 'Preposition', 'Conjunction')) return false;
    if (i === 0 && !has(t, 'ProperNoun', 'Person', 'Place', 'Organization', 'Acronym')) {
      // A sentence-initial word is a name when the course knows it, or when a capitalised word follows it.
      if (known.has(stripPossessive(t.text).toLowerCase())) return true;
      if (has(t, 'Adverb', 'Adjective') || !joinable(t.post)) return false;
      const next = tokens[1];
      const afterParticle = next && NAME_PARTICLES.has(next.text.toLowerCase()) ? tokens[2] : next;
      return !!afterParticle && isUpper(afterParticle.text) && !has(afterParticle, 'Pronoun', 'Determiner');
    }
    return true;
  };
  let i = 0;
  while (i < tokens.length) {
    if (!capital(tokens[i]!, i)) {
      i++;
      continue;
    }
    let j = i;
    // Extend over capitalised tokens and connectors ("of", "von", "of the") followed by a capitalised token.
    for (;;) {
      const cur = tokens[j]!;
      if (!joinable(cur.post) || /['\u2019]s$/u.test(cur.text)) break;
      const next = tokens[j + 1];
      if (next && capital(next, j + 1)) {
        j++;
        continue;
      }
      let k = j + 1;
      let connectors = 0;
      while (
        tokens[k] &&
        (CONNECTORS.has(tokens[k]!.text.toLowerCase()) ||
          (connectors > 0 && tokens[k]!.text === 'the') ||
          (tokens[k]!.text === 'and' && tokens[k + 1]?.text === 'of'))
      ) {
        if (!joinable(tokens[k]!.post)) break;
        k++;
        connectors++;
      }
      if (connectors > 0 && tokens[k] && capital(tokens[k]!, k) && connectors <= 3) {
        j = k;
        continue;
      }
      break;
    }
    const run = tokens.slice(i, j + 1);
    i = j + 1;
    const first = run[0]!;
    const last = run[run.length - 1]!;
    const text = stripPossessive(sentence.slice(first.start, last.end));
    if (run.length === 1 && (has(first, 'Month', 'WeekDay', 'Demonym') || text.length < 2)) continue;
    if (run.every((t) => has(t, 'Month', 'Date'))) continue;
    const prev = tokens[tokens.indexOf(first) - 1];
    const next = tokens[tokens.indexOf(last) + 1];
    // A lone name used as a modifier ("the French army", "the Bourbon monarchy") is not a good key.
    if (run.length === 1 && joinable(last.post) && next && has(next, 'Noun') && !isUpper(next.text)) continue;
    const lastWord = stripPossessive(last.text).toLowerCase();
    const firstWord = first.text.toLowerCase();
    const words = text.split(/\s+/);
    const capitalWords = run.filter((t) => isUpper(t.text));
    const knownKind = known.get(text.toLowerCase()) ?? (run.length === 1 ? known.get(lastWord) : undefined);
    let kind: TermKind = 'NAMED';
    if (knownKind) kind = knownKind;
    else if (run.length === 1 && /^[\p{Lu}\d]{2,6}$/u.test(text)) kind = 'ACRONYM';
    else if (CELESTIAL.has(lastWord) && run.length === 1) kind = 'CELESTIAL';
    else if (EVENT_HEADS.has(lastWord) || EVENT_HEADS.has(firstWord)) kind = 'EVENT';
    else if (PLACE_HEADS.has(lastWord) || (firstWord === 'saint' && run.length === 2)) kind = 'PLACE';
    else if (TITLES.has(firstWord) && run.length >= 2) kind = run[1]!.text === 'of' && run[2]?.text === 'the' ? 'NAMED' : 'PERSON';
    else if (ORG_HEADS.has(lastWord) || ORG_HEADS.has(firstWord)) kind = 'ORGANIZATION';
    else if (run.some((t) => has(t, 'Person', 'FirstName', 'LastName', 'Honorific', 'MaleName', 'FemaleName'))) kind = 'PERSON';
    else if (run.some((t) => has(t, 'Organization'))) kind = 'ORGANIZATION';
    else if (has(last, 'Place', 'Country', 'City', 'Region')) kind = 'PLACE';
    else if (
      capitalWords.length >= 2 &&
      capitalWords.length <= 4 &&
      run.every((t) => isUpper(t.text) || NAME_PARTICLES.has(t.text.toLowerCase())) &&
      !has(prev, 'Determiner') &&
      !run.some((t) => has(t, 'Demonym', 'Place', 'Date', 'Value')) &&
      (has(next, 'Verb', 'Adverb') || next?.text === 'and' || /^,/.test(last.post) || ['by', 'and', 'with'].includes(prev?.text ?? ''))
    )
      kind = 'PERSON';
    const identity =
      kind === 'PERSON' && words.length >= 2 && !ROMAN.test(words[words.length - 1]!)
        ? fold(stripPossessive(words[words.length - 1]!))
        : fold(text);
    out.push({
      text,
      start: first.start,
      end: first.start + text.length,
      kind,
      display: text,
      identity,
      plural: false,
      words: words.length,
      weight: kind === 'NAMED' ? 0.7 : kind === 'CELESTIAL' || kind === 'ACRONYM' ? 0.6 : kind === 'PLACE' ? 0.8 : 0.95,
    });
  }
  return out;
}

const standaloneVerb = new Map<string, boolean>();
const VERBS_IN_S = new Set('equals means gives makes takes has does goes uses needs becomes remains seems'.split(' '));
/** compromise tags some verbs as plural nouns ("describes gravity", "equals its mass"). */
function looksLikeVerb(tokens: Token[], i: number): boolean {
  const t = tokens[i]!;
  if (!has(t, 'Plural') || !/s$/i.test(t.text)) return false;
  const word = t.text.toLowerCase();
  let verb = standaloneVerb.get(word);
  if (verb === undefined) {
    verb = VERBS_IN_S.has(word) || [word.slice(0, -1), word.replace(/es$/, '')].some((w) => w.length > 2 && nlp(`to ${w}`).has('#Verb'));
    if (standaloneVerb.size > 5000) standaloneVerb.clear();
    standaloneVerb.set(word, verb);
  }
  if (!verb) return false;
  const prev = tokens[i - 1];
  const next = tokens[i + 1];
  const nounContext = !!prev && joinable(prev.post) && has(prev, 'Determiner', 'Adjective', 'Value', 'Possessive', 'Noun');
  return !nounContext || has(next, 'Determiner', 'Value', 'Pronoun', 'Possessive');
}

function nounPhrases(sentence: string, tokens: Token[]): KeyTerm[] {
  const out: KeyTerm[] = [];
  const common = (t: Token, i: number) =>
    has(t, 'Noun') &&
    !looksLikeVerb(tokens, i) &&
    !has(t, 'Pronoun', 'Value', 'Date', 'Possessive', 'Acronym') &&
    !(has(t, 'ProperNoun') && (i > 0 || has(t, 'Person', 'Place', 'Organization'))) &&
    !(i > 0 && isUpper(t.text)) &&
    /^[\p{L}][\p{L}-]*$/u.test(t.text);
  const adjective = (t: Token, i: number) =>
    has(t, 'Adjective') &&
    !has(t, 'Comparative', 'Superlative') &&
    !WEAK_ADJECTIVES.has(t.text.toLowerCase()) &&
    !(i > 0 && isUpper(t.text));
  let i = 0;
  while (i < tokens.length) {
    const startIdx = i;
    let j = i;
    while (tokens[j] && adjective(tokens[j]!, j) && joinable(tokens[j]!.post)) j++;
    let nounStart = j;
    while (tokens[j] && common(tokens[j]!, j)) {
      const t = tokens[j]!;
      // A plural noun ends the phrase ("describes gravity" is a verb and a noun).
      if (has(t, 'Plural') || !joinable(t.post) || !tokens[j + 1] || !common(tokens[j + 1]!, j + 1)) {
        j++;
        break;
      }
      j++;
    }
    if (j === nounStart) {
      i = Math.max(i + 1, j);
      continue;
    }
    let endIdx = j - 1;
    // "speed of light", "diffusion of water": of + bare noun(s), no determiner.
    if (
      tokens[j]?.text === 'of' &&
      joinable(tokens[endIdx]!.post) &&
      joinable(tokens[j]!.post) &&
      tokens[j + 1] &&
      common(tokens[j + 1]!, j + 1)
    ) {
      let k = j + 1;
      while (tokens[k] && common(tokens[k]!, k) && k - j <= 2) {
        const stop = has(tokens[k], 'Plural') || !joinable(tokens[k]!.post);
        k++;
        if (stop) break;
      }
      endIdx = k - 1;
      j = k;
    }
    i = j;
    const span = tokens.slice(startIdx, endIdx + 1);
    if (span.length > 5) continue;
    // The noun after a number is its unit or what is counted ("46 chromosomes", "9.8 metres").
    if (has(tokens[startIdx - 1], 'Value')) continue;
    const head = tokens.slice(nounStart, endIdx + 1);
    const headWords = head.map((t) => t.text.toLowerCase());
    if (span.length === 1 && (GENERIC_NOUNS.has(headWords[0]!) || headWords[0]!.length < 4)) continue;
    if (head.every((t) => GENERIC_NOUNS.has(t.text.toLowerCase())) && span.length - head.length === 0) continue;
    if (head.length === 1 && GENERIC_NOUNS.has(headWords[0]!) && span.length <= 2) continue;
    const first = span[0]!;
    const last = span[span.length - 1]!;
    const text = sentence.slice(first.start, last.end);
    const atStart = first.start === 0 || /^(?:the|a|an)\s+$/i.test(sentence.slice(0, first.start));
    const copula = tokens[tokens.indexOf(last) + 1];
    let predicate = tokens[tokens.indexOf(last) + 2];
    if (has(predicate, 'Adverb')) predicate = tokens[tokens.indexOf(last) + 3];
    // "X is/are a Y", "X is made of Y" — not passives ("the monarchy was abolished").
    const definitional =
      atStart &&
      has(copula, 'Copula') &&
      !!predicate &&
      !has(predicate, 'Value') &&
      (!has(predicate, 'Verb') ||
        /^(?:made|composed|built|defined|measured|called|known|formed)$/i.test(predicate.text) ||
        has(tokens[tokens.indexOf(predicate) + 1], 'Noun'));
    const display = first.start === 0 && !/^[\p{Lu}\d]{2,}/u.test(text) ? text[0]!.toLowerCase() + text.slice(1) : text;
    // The head noun is the last one before "of" ("number of chromosomes" is singular).
    const ofAt = span.findIndex((t) => t.text === 'of');
    const lastNoun = [...(ofAt > 0 ? span.slice(0, ofAt) : head)].reverse().find((t) => has(t, 'Noun'));
    out.push({
      text,
      start: first.start,
      end: last.end,
      kind: definitional ? 'CONCEPT' : 'NOUN_PHRASE',
      display,
      identity: terms(text).join(' ') || fold(text),
      plural: has(lastNoun, 'Plural'),
      words: span.length,
      definitional,
      weight: definitional ? 1 : span.length > 1 ? 0.65 : 0.5,
    });
  }
  return out;
}

/** The key terms of one sentence, in order of position, without overlaps (named terms and numbers win). */
export function extractTerms(sentence: string, known: ReadonlyMap<string, TermKind> = new Map()): KeyTerm[] {
  const tokens = tokensOf(sentence);
  const numbers = numberTerms(sentence, tokens);
  const named = namedTerms(sentence, tokens, known);
  const nps = nounPhrases(sentence, tokens);
  const out: KeyTerm[] = [];
  const overlaps = (a: KeyTerm) => out.some((b) => a.start < b.end && b.start < a.end);
  for (const t of [...numbers, ...named, ...nps]) if (!overlaps(t) && t.text.trim()) out.push(t);
  return out.sort((a, b) => a.start - b.start);
}

/** How many times a term occurs in a sentence (as whole words, folded). */
export function occurrences(sentence: string, term: string): number {
  const hay = plainWords(sentence);
  const needle = plainWords(term);
  if (!needle.length) return 0;
  let n = 0;
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    n++;
  }
  return n;
}

/** Singular/plural forms of a common noun phrase, through compromise. */
const inflectCache = new Map<string, string>();

export function inflect(phrase: string, plural: boolean): string {
  const k = `${plural ? 'p' : 's'}:${phrase}`;
  let out = inflectCache.get(k);
  if (out === undefined) {
    out = inflectUncached(phrase, plural);
    if (inflectCache.size > 20000) inflectCache.clear();
    inflectCache.set(k, out);
  }
  return out;
}

function inflectUncached(phrase: string, plural: boolean): string {
  const doc = nlp(phrase);
  const nouns = doc.nouns();
  if (!nouns.found) return phrase;
  const out = (plural ? nouns.toPlural() : nouns.toSingular()).all().text();
  return out || phrase;
}

/**
 * Names the course knows, for a second pass: every named term's lower-cased text
 * with its kind, and people's surnames (so that "Robespierre was arrested" at the
 * start of a sentence is a person too).
 */
export function knownNames(found: readonly KeyTerm[]): Map<string, TermKind> {
  const out = new Map<string, TermKind>();
  for (const t of found) {
    if (!NAMED_KINDS.has(t.kind)) continue;
    out.set(t.text.toLowerCase(), t.kind);
    if (t.kind === 'PERSON' && t.words >= 2) out.set(t.identity, 'PERSON');
  }
  return out;
}

/** Whether a text starts with a verb (or an adverb then a verb): "published the Principia", "was finally defeated". */
export function startsWithVerb(text: string): boolean {
  const tokens = tokensOf(text.trim());
  const first = tokens[0];
  if (!first) return false;
  if (has(first, 'Verb') && !has(first, 'Gerund')) return true;
  return has(first, 'Adverb') && has(tokens[1], 'Verb');
}
