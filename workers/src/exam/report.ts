/**
 * What a finished generation says, in a teacher's words: how many questions
 * it made of how many asked, and, when fewer, why (never padded).
 */
const RULE_WORDS: Record<string, string> = {
  'no-distractors': 'no distractors of the key’s kind',
  'no-key-term': 'no usable key term',
  'near-duplicate': 'near-duplicates',
  malformed: 'malformed',
  source: 'source not found in the passage',
  unsupported: 'answer not supported by the source',
  options: 'bad options',
  key: 'not exactly one correct option',
  'answer-in-stem': 'answer given away by the stem',
  'distractor-kind': 'distractors of the wrong kind',
  'key-balance': 'key positions unbalanced',
  'tf-balance': 'true/false unbalanced',
};

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** "no distractors of the key’s kind 12, near-duplicates 3": the most frequent rejections, material-exhausted aside. */
export function rejectionSummary(rejected: Record<string, number>, top = 3): string {
  return Object.entries(rejected)
    .filter(([rule, n]) => rule !== 'material-exhausted' && n > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, top)
    .map(([rule, n]) => `${RULE_WORDS[rule] ?? rule} ${n}`)
    .join(', ');
}

export interface GenerationSummary {
  engine: 'OFFLINE' | 'MODEL';
  requested: number;
  made: number;
  rejected: Record<string, number>;
  /** MODEL: why it stopped asking early (a model error), if it did. */
  stopped?: { code: string; message: string } | undefined;
  /** MODEL: model calls made (cache hits aside). */
  calls?: number;
}

/** The task's completion message. */
export function completionMessage(s: GenerationSummary): string {
  if (s.made >= s.requested) return `Made ${plural(s.made, 'question')}`;
  const head = `Made ${s.made} of ${plural(s.requested, 'question')}`;
  const missing = s.requested - s.made;
  const why = rejectionSummary(s.rejected);
  if (s.engine === 'OFFLINE') return `${head}: the material ran out (${missing})${why ? `; candidates rejected: ${why}` : ''}`;
  if (s.stopped) return `${head}: the model stopped answering (${s.stopped.code}) with ${missing} to go`;
  return `${head}: ${missing} more failed validation even after a repair${why ? ` (${why})` : ''}`;
}

/** The failure of a generation that made nothing: a stable code and a message. */
export function failure(s: GenerationSummary & { passages: number; usableSentences?: number }): { code: string; message: string } {
  const why = rejectionSummary(s.rejected);
  if (s.engine === 'MODEL') {
    if (s.stopped) return { code: s.stopped.code, message: `No question could be made: the model failed (${s.stopped.message})` };
    return {
      code: 'NO_VALID_QUESTIONS',
      message: `None of the model’s questions passed validation${why ? ` (${why})` : ''}; try other documents or the offline generator`,
    };
  }
  const sentences =
    s.usableSentences === undefined ? '' : ` (${plural(s.usableSentences, 'usable sentence')} in ${plural(s.passages, 'passage')})`;
  return {
    code: 'NOT_ENOUGH_MATERIAL',
    message: `No question could be made from this material${sentences}${why ? `; candidates rejected: ${why}` : ''}`,
  };
}
