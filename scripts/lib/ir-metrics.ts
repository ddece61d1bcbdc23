/** Relevance judgements: query id -> document id -> grade (> 0 is relevant). */
export type Qrels = Map<string, Map<string, number>>;

/** nDCG@k with graded gains (2^rel - 1 in TREC's form is not used by BEIR: it uses rel itself, as pytrec_eval does). */
export function ndcgAtK(ranked: string[], judged: Map<string, number>, k: number): number {
  const dcg = ranked.slice(0, k).reduce((sum, id, i) => sum + (judged.get(id) ?? 0) / Math.log2(i + 2), 0);
  const ideal = [...judged.values()]
    .filter((g) => g > 0)
    .sort((a, b) => b - a)
    .slice(0, k)
    .reduce((sum, g, i) => sum + g / Math.log2(i + 2), 0);
  return ideal === 0 ? 0 : dcg / ideal;
}

/** Share of the relevant documents found in the first k. */
export function recallAtK(ranked: string[], judged: Map<string, number>, k: number): number {
  const relevant = [...judged].filter(([, g]) => g > 0).map(([id]) => id);
  if (relevant.length === 0) return 0;
  const top = new Set(ranked.slice(0, k));
  return relevant.filter((id) => top.has(id)).length / relevant.length;
}

export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

/** Parses BEIR's qrels TSV (query-id, corpus-id, score), with or without its header line. */
export function parseQrels(tsv: string): Qrels {
  const qrels: Qrels = new Map();
  for (const line of tsv.split('\n')) {
    const [q, d, s] = line.trim().split('\t');
    if (!q || !d || s === undefined || q === 'query-id') continue;
    const grade = Number(s);
    if (!Number.isFinite(grade)) continue;
    if (!qrels.has(q)) qrels.set(q, new Map());
    qrels.get(q)!.set(d, grade);
  }
  return qrels;
}
