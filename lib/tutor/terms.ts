/**
 * Term normalisation and weighting shared by the tutor's scorers.
 *
 * Terms are the ones retrieval uses (`tokenize` from lib/search/lexical.ts: lower-cased words,
 * NLTK stop words removed, Snowball English stems), so what the tutor counts as "the same word"
 * is what BM25 matched on. On top of that:
 *   - `QUESTION_FILLER`: words that say what kind of answer is wanted, not what it is about
 *     ("explain", "mean", "happen", "important"…). They are dropped from questions only.
 *   - `rarity`: a question term's weight. Very common English words ("world", "make", "time",
 *     "use"…, `COMMON_WORDS`) weigh `COMMON_WEIGHT`, other words 1, and names and numbers the
 *     student wrote (capitalised inside the sentence, or containing a digit) `SPECIFIC_WEIGHT`:
 *     they are what a question is most specifically about.
 *   - `IRREGULAR_FORMS`: irregular plurals and verb forms the stemmer leaves apart from their
 *     base ("leaves"/"leaf", "gases"/"gas", "went"/"go", "written"/"write") are mapped to the
 *     base first; `AMBIGUOUS_FORMS` ("lives": the noun or the verb) to both readings.
 *   - `SYNONYM_GROUPS`: everyday synonyms ("contain"/"consist", "stop"/"prevent") count as the
 *     same term.
 *   - `sameTerm`: two stems are the same term when equal, or when the shorter (at least 5
 *     characters) begins the longer ("gravit"/"graviti", "revolut"/"revolutionari"), which
 *     catches derived forms the stemmer keeps apart.
 */
import { tokenize } from '../search/lexical.js';

/** Irregular forms mapped to their base word before stemming. */
export const IRREGULAR_FORMS: ReadonlyMap<string, string> = new Map(
  (
    'leaves:leaf knives:knife wives:wife halves:half shelves:shelf wolves:wolf calves:calf thieves:thief ' +
    'loaves:loaf children:child men:man women:woman feet:foot teeth:tooth mice:mouse geese:goose gases:gas ' +
    'went:go goes:go gone:go phenomena:phenomenon criteria:criterion nuclei:nucleus analyses:analysis ' +
    'crises:crisis hypotheses:hypothesis theses:thesis indices:index matrices:matrix vertices:vertex ' +
    'stomata:stoma mitochondria:mitochondrion fungi:fungus cacti:cactus radii:radius stimuli:stimulus ' +
    // Irregular past tenses and participles (not those that are also other words: "found", "left", "saw"…).
    'became:become began:begin begun:begin bought:buy brought:bring built:build caught:catch chose:choose ' +
    'chosen:choose drew:draw drawn:draw drove:drive driven:drive ate:eat eaten:eat fought:fight flew:fly ' +
    'flown:fly forgot:forget forgotten:forget froze:freeze frozen:freeze gave:give given:give grew:grow ' +
    'grown:grow held:hold kept:keep knew:know known:know led:lead lost:lose made:make met:meet paid:pay ' +
    'ran:run said:say sent:send shown:show sold:sell sought:seek spent:spend stood:stand struck:strike ' +
    'taught:teach thought:think told:tell took:take taken:take threw:throw thrown:throw understood:understand ' +
    'wrote:write written:write hidden:hide rode:ride ridden:ride risen:rise shook:shake shaken:shake ' +
    'stole:steal stolen:steal swam:swim swum:swim woke:wake woken:wake wore:wear worn:wear tore:tear torn:tear'
  )
    .split(' ')
    .map((pair) => pair.split(':') as [string, string]),
);

/**
 * Forms that are a plural noun or a verb ("a bee's lives" / "a worker lives five weeks"): they
 * yield both terms, so either reading matches.
 */
export const AMBIGUOUS_FORMS: ReadonlyMap<string, string> = new Map([['lives', 'life lives']]);

/**
 * The normalised terms of a text, in order and with repeats: `tokenize` (retrieval's terms)
 * after `IRREGULAR_FORMS` are mapped to their base word (`AMBIGUOUS_FORMS` to both readings).
 */
export function terms(text: string): string[] {
  return tokenize(text.replace(/\p{L}+/gu, (w) => AMBIGUOUS_FORMS.get(w.toLowerCase()) ?? IRREGULAR_FORMS.get(w.toLowerCase()) ?? w));
}

const stems = (text: string): Set<string> => new Set(terms(text));

/** Words of a question that ask for a kind of answer rather than name its subject (stemmed at load). */
export const QUESTION_FILLER: ReadonlySet<string> = stems(
  [
    'explain explains explained explanation describe describes description tell telling told say says said mention mentioned',
    'mean means meant meaning define defines definition happen happens happened happening occur occurs occurred',
    'give gives example examples instance please know knows understand understanding called call name named',
    'role main way ways thing things kind kinds sort sorts also really exactly actually basically simply simple',
    'word words important importance question questions answer answers help course material materials lesson',
    'summarize summarise summary overview detail details idea ideas concept talk talks can could would might',
    'get gets like something anything someone anyone need needs want wants think thinks bit little lot many much',
    'else tell context regarding according find found locate located situated',
  ].join(' '),
);

/**
 * Very common English content words (a general-English frequency list's head, written out by
 * hand): a question's words that are on this list say less about its subject than the others.
 */
export const COMMON_WORDS: ReadonlySet<string> = stems(
  [
    // verbs
    'be have do go get make know take see come think look want give use find tell ask work seem feel try leave call keep',
    'let begin help talk turn start show hear play run move like live believe hold bring happen write provide sit stand',
    'lose pay meet include continue set learn change lead understand watch follow stop create speak read allow add spend',
    'grow open walk win won offer remember love consider appear buy wait serve die send expect build stay fall cut reach',
    'kill remain suggest raise pass sell require report decide pull return hope develop carry break receive agree',
    'support hit produce eat cover catch draw choose cause point listen realize place close involve increase drive base',
    'finish pick hang wear fill face put become mean act end form rise fly sing travel teach tell wish go goes went',
    // nouns
    'time year people way day man men thing woman women life child children world school state family student group',
    'country problem hand part place case week company system program question government number night point home water',
    'room mother area money story fact month lot right study book eye job word business issue side kind head house',
    'service friend father power hour game line end member law car city community name president team minute idea kid',
    'body information back parent face level office door health person art war history party result morning reason',
    'research girl boy guy moment air teacher force education food foot age policy process music market sense nation',
    'plan college interest death experience effect class control care field development role effort rate heart leader',
    'light voice wife police mind price report decision son view relationship town road arm difference value building',
    'action model season society tax director position player record paper space ground form event matter center couple',
    'site project activity star table court oil situation cost industry figure street image phone data picture practice',
    'piece land product doctor wall worker news test movie film tree source organization evidence population energy',
    'sun earth sea fire animal plant cup ball money color colour size weight speed heat',
    // adjectives and adverbs
    'good new first last long great little own old big high different small large next early young important few',
    'public bad same able best better sure free true whole real full low late hard major least less',
    'ago always never often sometimes usually still already yet ever soon later finally nearly almost one two three',
  ].join(' '),
);

/**
 * Everyday synonyms a student may use for the course's word ("what does it contain?" / "it
 * consists of…", "what prevents…" / "stops…"): groups of general-English words, not subject
 * terms, written out by hand. Two terms of one group are the same term for `sameTerm`.
 */
export const SYNONYM_GROUPS: readonly (readonly string[])[] = [
  'contain consist comprise include',
  'begin start commence',
  'stop prevent halt',
  'rear raise breed',
  'make produce create generate manufacture',
  'pick choose select',
  'gather collect',
  'big large huge enormous',
  'small little tiny',
  'fast quick rapid swift',
  'build construct',
  'die perish',
  'use employ utilise utilize',
  'show indicate reveal display demonstrate',
  'need require',
  'help aid assist',
  'get obtain acquire gain',
  'end finish conclude',
  'find discover detect',
  'buy purchase',
  'try attempt',
  'allow permit enable',
  'change alter modify',
  'increase rise grow',
  'decrease reduce shrink',
  'danger hazard risk threat',
  'speed velocity',
  'job task duty',
  'trip journey voyage',
  'area region zone',
  'main chief principal primary',
  'problem issue difficulty',
  'fix repair mend',
  'hard difficult',
  'cheap inexpensive',
  'wrong incorrect',
  'destroy ruin wreck',
  'picture image illustration',
  'forecast predict',
  'amount quantity',
  'goal aim purpose',
  'method technique approach',
  'benefit advantage',
  'drawback disadvantage downside',
].map((group) => [...new Set(terms(group))]);

const SYNONYMS: ReadonlyMap<string, ReadonlySet<string>> = (() => {
  const out = new Map<string, Set<string>>();
  for (const group of SYNONYM_GROUPS) {
    for (const t of group) for (const u of group) if (t !== u) (out.get(t) ?? out.set(t, new Set()).get(t)!).add(u);
  }
  return out;
})();

/** Weight of a question term on `COMMON_WORDS`. */
export const COMMON_WEIGHT = 0.5;
/** Weight of a name or number the student wrote. */
export const SPECIFIC_WEIGHT = 1.5;

/** The distinct normalised terms of a text, in order of first occurrence. */
export function uniqueTerms(text: string): string[] {
  return [...new Set(terms(text))];
}

/** A question's content terms: its distinct terms without `QUESTION_FILLER`. */
export function questionTerms(question: string): string[] {
  return uniqueTerms(question).filter((t) => !QUESTION_FILLER.has(t));
}

/**
 * Stems of the words a text writes as names or numbers: a word with a digit, or a capitalised
 * word that is not the first word of its sentence ("Einstein" in "What did Einstein say?").
 */
export function specificTerms(text: string): Set<string> {
  const out = new Set<string>();
  const re = /[\p{L}\p{N}\p{M}_]+/gu;
  let sentenceStart = true;
  let m: RegExpExecArray | null;
  let last = 0;
  while ((m = re.exec(text)) !== null) {
    if (/[.!?]/u.test(text.slice(last, m.index))) sentenceStart = true;
    last = m.index + m[0].length;
    const word = m[0];
    const specific = /\p{N}/u.test(word) || (!sentenceStart && /^\p{Lu}/u.test(word) && word !== 'I');
    sentenceStart = false;
    if (!specific) continue;
    for (const t of terms(word)) out.add(t);
  }
  return out;
}

/** The weight of a question term, given the question's specific terms (see `specificTerms`). */
export function rarity(term: string, specific: ReadonlySet<string> = new Set()): number {
  if (specific.has(term)) return SPECIFIC_WEIGHT;
  return COMMON_WORDS.has(term) ? COMMON_WEIGHT : 1;
}

/** Equal stems, synonyms (`SYNONYM_GROUPS`), or a stem of at least 5 characters that begins the other ("gravit"/"graviti"). */
export function sameTerm(a: string, b: string): boolean {
  if (a === b) return true;
  if (SYNONYMS.get(a)?.has(b)) return true;
  const [short, long] = a.length <= b.length ? [a, b] : [b, a];
  return short.length >= 5 && long.startsWith(short);
}

/** Whether `term` is in `terms`, by `sameTerm`. */
export function hasTerm(terms: ReadonlySet<string>, term: string): boolean {
  if (terms.has(term)) return true;
  for (const synonym of SYNONYMS.get(term) ?? []) if (terms.has(synonym)) return true;
  for (const t of terms) if (sameTerm(t, term)) return true;
  return false;
}

/** Cosine similarity of two texts' term-frequency vectors (0 when either has no terms). */
export function cosine(a: readonly string[], b: readonly string[]): number {
  if (a.length === 0 || b.length === 0) return 0;
  const ca = new Map<string, number>();
  const cb = new Map<string, number>();
  for (const t of a) ca.set(t, (ca.get(t) ?? 0) + 1);
  for (const t of b) cb.set(t, (cb.get(t) ?? 0) + 1);
  let dot = 0;
  for (const [t, n] of ca) dot += n * (cb.get(t) ?? 0);
  let na = 0;
  let nb = 0;
  for (const n of ca.values()) na += n * n;
  for (const n of cb.values()) nb += n * n;
  return dot / Math.sqrt(na * nb);
}
