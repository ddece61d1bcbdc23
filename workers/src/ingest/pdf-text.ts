/**
 * Turns one PDF page's text items (pdfjs `getTextContent().items`) into plain text with
 * structure: items on one baseline become a line, lines become paragraphs separated by a blank
 * line, and lines in a clearly larger font than the page's body text become `#` headings.
 * Pure: no pdfjs import, so it is tested with hand-made items.
 */

export interface PdfTextItem {
  str: string;
  /** [a, b, c, d, e, f]: font size from (c, d), position (e, f) in PDF units, y growing upwards. */
  transform: number[];
  width: number;
  height: number;
  hasEOL: boolean;
}

export interface PdfPageText {
  text: string;
  /** Non-whitespace characters pdfjs gave before cleaning. */
  rawChars: number;
  /** True when most characters are control or private-use codes: a font without a Unicode map, so the text is garbage. */
  unreadable: boolean;
}

interface Line {
  text: string;
  x0: number;
  y: number;
  size: number;
}

// C0/C1 controls (except tab and newline), private-use code points, replacement characters, lone surrogates.
const GARBLED =
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\ue000-\uf8ff\ufffd]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const UNREADABLE_SHARE = 0.25;

const round = (n: number) => Math.round(n * 2) / 2;

function fontSize(item: PdfTextItem): number {
  const [, , c = 0, d = 0] = item.transform;
  return Math.hypot(c, d) || item.height || 1;
}

/** Groups items into lines: a new line after `hasEOL` or when the baseline moves by more than half the font size. */
function toLines(items: PdfTextItem[]): Line[] {
  const lines: Line[] = [];
  let parts: string[] = [];
  let x0 = 0;
  let x1 = 0;
  let y = 0;
  const sizes = new Map<number, number>();

  const close = () => {
    const text = parts.join('').replace(/\s+/g, ' ').trim();
    if (text) {
      let size = 0;
      let best = -1;
      for (const [s, n] of sizes) if (n > best || (n === best && s > size)) [size, best] = [s, n];
      lines.push({ text, x0, y, size });
    }
    parts = [];
    sizes.clear();
  };

  for (const item of items) {
    const str = item.str.replace(GARBLED, '');
    if (!str) {
      if (item.hasEOL) close();
      continue;
    }
    const size = fontSize(item);
    const x = item.transform[4] ?? 0;
    const itemY = item.transform[5] ?? 0;
    if (parts.length) {
      const lineSize = Math.max(...sizes.keys());
      if (Math.abs(itemY - y) > 0.5 * Math.max(size, lineSize)) close();
    }
    if (!parts.length) {
      x0 = x;
      y = itemY;
    } else {
      const gap = x - x1;
      const last = parts[parts.length - 1]!;
      if ((gap > 0.15 * size || gap < -size) && !/\s$/.test(last) && !/^\s/.test(str)) parts.push(' ');
    }
    parts.push(str);
    x1 = x + item.width;
    const key = round(size);
    sizes.set(key, (sizes.get(key) ?? 0) + str.trim().length);
    if (item.hasEOL) close();
  }
  close();
  return lines;
}

function bodySize(lines: Line[]): number {
  const weight = new Map<number, number>();
  for (const line of lines) weight.set(line.size, (weight.get(line.size) ?? 0) + line.text.length);
  let size = 0;
  let best = -1;
  for (const [s, n] of weight) if (n > best || (n === best && s < size)) [size, best] = [s, n];
  return size;
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
}

export function pdfPageText(items: PdfTextItem[]): PdfPageText {
  let rawChars = 0;
  let garbled = 0;
  for (const item of items) {
    const visible = item.str.replace(/\s+/g, '');
    rawChars += visible.length;
    garbled += visible.match(GARBLED)?.length ?? 0;
  }
  if (rawChars > 0 && garbled / rawChars > UNREADABLE_SHARE) return { text: '', rawChars, unreadable: true };

  const lines = toLines(items);
  if (!lines.length) return { text: '', rawChars, unreadable: false };
  const body = bodySize(lines);
  const headingLevel = (line: Line): 0 | 1 | 2 => {
    if (line.size < 1.2 * body || line.text.length > 150 || !/\p{L}/u.test(line.text)) return 0;
    return line.size >= 1.6 * body ? 1 : 2;
  };
  const levels = lines.map(headingLevel);
  // Typical distance between consecutive body lines: a larger gap starts a paragraph.
  const gaps: number[] = [];
  for (let i = 1; i < lines.length; i++) {
    const [a, b] = [lines[i - 1]!, lines[i]!];
    const gap = a.y - b.y;
    if (!levels[i] && !levels[i - 1] && a.size === b.size && gap > 0 && gap < 3 * a.size) gaps.push(gap);
  }
  // A low quantile, not the median: lines inside paragraphs outnumber paragraph gaps, and a page with only a few
  // lines falls back to the usual 1.2 x font size.
  const lineGap = Math.max(gaps.length >= 3 ? quantile(gaps, 0.25) : 1.2 * body, body);

  const blocks: string[] = [];
  let current = '';
  let currentLevel = 0;
  const flush = () => {
    // A "heading" that runs over 200 characters is a block of larger text (an author list, a pull quote), not a heading.
    if (current) blocks.push(currentLevel && current.length <= 200 ? `${'#'.repeat(currentLevel)} ${current}` : current);
    current = '';
  };
  lines.forEach((line, i) => {
    const level = levels[i]!;
    const prev = lines[i - 1];
    let join: 'none' | 'line' | 'space' | 'hyphen' = 'none';
    if (prev && current) {
      const gap = prev.y - line.y;
      if (level || currentLevel) {
        // A heading continues over several lines when size and level stay the same and the lines are close.
        if (level === currentLevel && Math.abs(line.size - prev.size) < 0.5 && gap > 0 && gap <= 1.8 * line.size) join = 'space';
      } else {
        const sameSize = Math.abs(line.size - prev.size) <= 0.2 * prev.size;
        const close = gap > 0 && gap <= 1.35 * lineGap;
        const indented = /[.!?:;"”)]$/.test(prev.text) && line.x0 - prev.x0 > 0.8 * line.size;
        if (sameSize && close && !indented) join = /\p{Ll}-$/u.test(prev.text) && /^\p{Ll}/u.test(line.text) ? 'hyphen' : 'line';
      }
    }
    if (join === 'none') {
      flush();
      current = line.text;
      currentLevel = level;
    } else if (join === 'hyphen') current = current.slice(0, -1) + line.text;
    else current += (join === 'space' ? ' ' : '\n') + line.text;
  });
  flush();
  return { text: blocks.join('\n\n'), rawChars, unreadable: false };
}
