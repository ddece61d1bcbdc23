/**
 * Turns tesseract's TSV output for one page (`tesseract <image> stdout tsv`) into the same kind
 * of text pdf-text.ts makes from a text layer: words joined into lines, lines into paragraphs
 * (blank line between), a word hyphenated across lines rejoined, and paragraphs in a clearly
 * larger type than the page's body text marked as `#` headings. Also judges whether the page
 * was read well enough to index. Pure: tested with hand-made TSV.
 *
 * TSV columns: level page_num block_num par_num line_num word_num left top width height conf text;
 * level 4 rows are lines, level 5 rows words (conf 0-100).
 */

export interface OcrPageText {
  text: string;
  /** Mean word confidence, 0-100, each word weighted by its length; null when no word was found. */
  confidence: number | null;
  /** Letters and digits in `text`. */
  chars: number;
  /** Letters and digits in every word found, the ones left out for a low confidence included. */
  foundChars: number;
}

export type OcrOutcome =
  | { outcome: 'read'; confidence: number }
  /** No word with a letter or a digit: an empty page (or a picture without text). */
  | { outcome: 'blank' }
  | { outcome: 'skipped'; reason: string; confidence?: number };

/** Words below this confidence are noise (a speck, a line of a figure read as letters): left out of the text. */
export const MIN_WORD_CONFIDENCE = 30;

const ALNUM = /[\p{L}\p{N}]/gu;
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\ufffd]/g;

interface Word {
  text: string;
  conf: number;
}

interface Line {
  words: Word[];
  /** Of the line's box: about ascender to descender, so it follows the type size. */
  height: number;
}

interface Paragraph {
  lines: Line[];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)]! : 0;
}

/** The paragraphs of the page in tesseract's reading order, with all the words it found (confidence filtering comes later). */
function paragraphs(tsv: string): Paragraph[] {
  const byKey = new Map<string, Paragraph>();
  const lines = new Map<string, Line>();
  const heights = new Map<string, number>();
  for (const row of tsv.split('\n')) {
    const cols = row.split('\t');
    if (cols.length < 12) continue;
    const parKey = `${cols[1]}.${cols[2]}.${cols[3]}`;
    const lineKey = `${parKey}.${cols[4]}`;
    if (cols[0] === '4') heights.set(lineKey, Number(cols[9]) || 0);
    if (cols[0] !== '5') continue;
    const text = cols.slice(11).join(' ').replace(CONTROL, '').trim();
    const conf = Number(cols[10]);
    if (!text || !Number.isFinite(conf) || conf < 0) continue;
    let line = lines.get(lineKey);
    if (!line) {
      line = { words: [], height: heights.get(lineKey) ?? 0 };
      lines.set(lineKey, line);
      let par = byKey.get(parKey);
      if (!par) byKey.set(parKey, (par = { lines: [] }));
      par.lines.push(line);
    }
    line.words.push({ text, conf });
  }
  return [...byKey.values()];
}

export function ocrPageText(tsv: string): OcrPageText {
  const pars = paragraphs(tsv);
  let weighted = 0;
  let length = 0;
  let foundChars = 0;
  for (const par of pars)
    for (const line of par.lines)
      for (const word of line.words) {
        weighted += word.conf * word.text.length;
        length += word.text.length;
        foundChars += word.text.match(ALNUM)?.length ?? 0;
      }
  const confidence = length ? Math.round((weighted / length) * 10) / 10 : null;

  // Keep the words read confidently enough; drop lines and paragraphs left empty.
  const kept = pars
    .map((par) => ({
      lines: par.lines
        .map((line) => ({
          ...line,
          text: line.words
            .filter((w) => w.conf >= MIN_WORD_CONFIDENCE)
            .map((w) => w.text)
            .join(' '),
        }))
        .filter((line) => line.text),
    }))
    .filter((par) => par.lines.length);
  // The body's line height: the median over the page's characters, so that a few large lines do not count much.
  const bodyHeight = median(kept.flatMap((par) => par.lines.flatMap((line) => Array<number>(line.text.length).fill(line.height))));

  const blocks = kept.map((par) => {
    const lineTexts = par.lines.map((line) => line.text);
    const joined = lineTexts.join(' ');
    // As pdf-text.ts does for a text layer: 1.6 times the body's size or more, `#`; 1.25 times, `##`.
    const ratio = bodyHeight ? median(par.lines.map((line) => line.height)) / bodyHeight : 1;
    if (ratio >= 1.25 && par.lines.length <= 2 && joined.length <= 150 && /\p{L}/u.test(joined)) {
      return `${ratio >= 1.6 ? '#' : '##'} ${joined}`;
    }
    let text = lineTexts[0]!;
    for (const next of lineTexts.slice(1)) {
      text = /\p{Ll}-$/u.test(text) && /^\p{Ll}/u.test(next) ? text.slice(0, -1) + next : `${text}\n${next}`;
    }
    return text;
  });
  const text = blocks.join('\n\n');
  return { text, confidence, chars: text.match(ALNUM)?.length ?? 0, foundChars };
}

/** Whether a page's OCR is worth indexing: enough letters and digits, read with enough confidence. */
export function judgeOcrPage(page: OcrPageText, limits: { minConfidence: number; minChars: number }): OcrOutcome {
  if (page.foundChars === 0 || page.confidence === null) return { outcome: 'blank' };
  if (page.confidence < limits.minConfidence) {
    return { outcome: 'skipped', reason: `confidence ${page.confidence} below ${limits.minConfidence}`, confidence: page.confidence };
  }
  if (page.chars < limits.minChars) {
    return { outcome: 'skipped', reason: `${page.chars} letters and digits, fewer than ${limits.minChars}`, confidence: page.confidence };
  }
  return { outcome: 'read', confidence: page.confidence };
}
