/**
 * HTML to plain text that keeps the structure a chunker needs: `<h1>`..`<h6>` become `#` lines,
 * block elements become paragraphs (blank line), `<br>` a line break, `<li>` a `- ` or `1. `
 * line, table rows a line with ` | ` between cells, `<pre>` a fenced block with its whitespace
 * kept. `<script>`, `<style>` and other non-content elements are dropped; entities are decoded.
 * A small tokenizer, not a full HTML5 parser: it does not build a tree, so badly nested or
 * unclosed tags only cost a line break at worst.
 */

export interface HtmlText {
  text: string;
  title?: string;
}

/** Elements whose whole content is skipped. */
const SKIPPED = new Set(['script', 'style', 'noscript', 'template', 'svg', 'iframe', 'object', 'canvas', 'select', 'textarea']);
/** Elements whose content the tokenizer must not read as markup. */
const RAW_TEXT = new Set(['script', 'style', 'textarea', 'title', 'xmp', 'noscript', 'template', 'iframe']);
const BLOCK = new Set(
  (
    'address article aside blockquote body caption center dd details dialog dir div dl dt fieldset figcaption figure footer form ' +
    'header hgroup html legend main menu nav ol p section summary table tbody tfoot thead ul'
  ).split(' '),
);

// Common named entities; anything else stays as written. Numeric references are decoded in full.
// prettier-ignore
const NAMED: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', ensp: ' ', emsp: ' ', thinsp: ' ', shy: '', ndash: '–',
  mdash: '—', hellip: '…', lsquo: '‘', rsquo: '’', sbquo: '‚', ldquo: '“', rdquo: '”', bdquo: '„', laquo: '«', raquo: '»',
  lsaquo: '‹', rsaquo: '›', bull: '•', middot: '·', prime: '′', Prime: '″', copy: '©', reg: '®', trade: '™', deg: '°',
  plusmn: '±', times: '×', divide: '÷', minus: '−', micro: 'µ', para: '¶', sect: '§', dagger: '†', Dagger: '‡', permil: '‰',
  euro: '€', pound: '£', yen: '¥', cent: '¢', frac12: '½', frac14: '¼', frac34: '¾', sup1: '¹', sup2: '²', sup3: '³',
  ordf: 'ª', ordm: 'º', iexcl: '¡', iquest: '¿', le: '≤', ge: '≥', ne: '≠', asymp: '≈', equiv: '≡', infin: '∞', sum: '∑',
  prod: '∏', radic: '√', part: '∂', int: '∫', nabla: '∇', isin: '∈', notin: '∉', sub: '⊂', sup: '⊃', cap: '∩', cup: '∪',
  forall: '∀', exist: '∃', empty: '∅', and: '∧', or: '∨', not: '¬', larr: '←', rarr: '→', uarr: '↑', darr: '↓', harr: '↔',
  rArr: '⇒', hArr: '⇔', alpha: 'α', beta: 'β', gamma: 'γ', delta: 'δ', epsilon: 'ε', zeta: 'ζ', eta: 'η', theta: 'θ',
  iota: 'ι', kappa: 'κ', lambda: 'λ', mu: 'μ', nu: 'ν', xi: 'ξ', omicron: 'ο', pi: 'π', rho: 'ρ', sigma: 'σ', sigmaf: 'ς',
  tau: 'τ', upsilon: 'υ', phi: 'φ', chi: 'χ', psi: 'ψ', omega: 'ω', Gamma: 'Γ', Delta: 'Δ', Theta: 'Θ', Lambda: 'Λ', Xi: 'Ξ',
  Pi: 'Π', Sigma: 'Σ', Phi: 'Φ', Psi: 'Ψ', Omega: 'Ω', Agrave: 'À', Aacute: 'Á', Acirc: 'Â', Atilde: 'Ã', Auml: 'Ä',
  Aring: 'Å', AElig: 'Æ', Ccedil: 'Ç', Egrave: 'È', Eacute: 'É', Ecirc: 'Ê', Euml: 'Ë', Igrave: 'Ì', Iacute: 'Í', Icirc: 'Î',
  Iuml: 'Ï', Ntilde: 'Ñ', Ograve: 'Ò', Oacute: 'Ó', Ocirc: 'Ô', Otilde: 'Õ', Ouml: 'Ö', Oslash: 'Ø', Ugrave: 'Ù',
  Uacute: 'Ú', Ucirc: 'Û', Uuml: 'Ü', Yacute: 'Ý', szlig: 'ß', agrave: 'à', aacute: 'á', acirc: 'â', atilde: 'ã', auml: 'ä',
  aring: 'å', aelig: 'æ', ccedil: 'ç', egrave: 'è', eacute: 'é', ecirc: 'ê', euml: 'ë', igrave: 'ì', iacute: 'í', icirc: 'î',
  iuml: 'ï', ntilde: 'ñ', ograve: 'ò', oacute: 'ó', ocirc: 'ô', otilde: 'õ', ouml: 'ö', oslash: 'ø', ugrave: 'ù',
  uacute: 'ú', ucirc: 'û', uuml: 'ü', yacute: 'ý', yuml: 'ÿ', OElig: 'Œ', oelig: 'œ', Scaron: 'Š', scaron: 'š', Yuml: 'Ÿ',
};
// Numeric references 0x80..0x9f mean windows-1252 characters (HTML spec, "numeric character reference end state").
const CP1252 = '€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008dŽ\u008f\u0090‘’“”•–—˜™š›œ\u009džŸ';

function codePoint(code: number): string {
  if (code >= 0x80 && code <= 0x9f) return CP1252[code - 0x80]!;
  if (code === 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return '\ufffd';
  return String.fromCodePoint(code);
}

export function decodeEntities(text: string): string {
  return text.replace(/&(?:#(\d{1,8})|#[xX]([0-9a-fA-F]{1,7})|([a-zA-Z][a-zA-Z0-9]{1,31}));?/g, (match, dec, hex, name) => {
    if (dec !== undefined) return codePoint(Number.parseInt(dec, 10));
    if (hex !== undefined) return codePoint(Number.parseInt(hex, 16));
    return NAMED[name as string] ?? match;
  });
}

/** Accumulates text with pending breaks, so that nested blocks never produce more than one blank line. */
class Writer {
  private readonly out: string[] = [];
  private pendingBreak = 0;
  private pendingSpace = false;
  private prefix = '';
  private empty = true;
  private trailingNewlines = 0;
  private lastChar = '';

  breakLine(level: 1 | 2, additive = false): void {
    this.pendingBreak = additive ? Math.min(2, this.pendingBreak + 1) : Math.max(this.pendingBreak, level);
  }

  /** A marker written before the next text ("## ", "- "); dropped if no text follows. */
  setPrefix(prefix: string): void {
    this.prefix = prefix;
  }

  text(raw: string, preformatted: boolean): void {
    let text = raw;
    if (!preformatted) {
      text = text.replace(/[\s\u00a0]+/g, ' ');
      if (text.startsWith(' ')) {
        this.pendingSpace = true;
        text = text.slice(1);
      }
      const trailing = text.endsWith(' ');
      text = text.trimEnd();
      if (!text) return;
      this.write(text);
      this.pendingSpace = trailing;
    } else if (text) this.write(text);
  }

  private write(text: string): void {
    if (!this.empty && this.pendingBreak > this.trailingNewlines) this.push('\n'.repeat(this.pendingBreak - this.trailingNewlines));
    else if (!this.empty && this.pendingSpace && !/\s/.test(this.lastChar)) this.push(' ');
    this.pendingBreak = 0;
    this.pendingSpace = false;
    if (this.prefix) this.push(this.prefix);
    this.prefix = '';
    this.push(text);
  }

  private push(text: string): void {
    if (!text) return;
    this.out.push(text);
    this.empty = false;
    this.lastChar = text[text.length - 1]!;
    const newlines = /\n*$/.exec(text)![0].length;
    this.trailingNewlines = newlines === text.length ? this.trailingNewlines + newlines : newlines;
  }

  /** Emits pending breaks as if text followed (used to put a fence line on its own line). */
  raw(text: string): void {
    this.write(text);
  }

  result(): string {
    return this.out
      .join('')
      .replace(/[ \t]+$/gm, '')
      .replace(/\n{3,}/g, '\n\n')
      .trim();
  }
}

// Unquoted attribute text stops at "<", so a tag that never closes costs a scan to the next "<", not to the end
// of the file: hostile input such as "<a x<a x<a x..." stays linear.
const TAG = /<(\/?)([a-zA-Z][a-zA-Z0-9:-]*)((?:[^<>"']|"[^"]*"|'[^']*')*)>/y;

export function htmlToText(html: string): HtmlText {
  const source = html.replace(/\r\n?/g, '\n');
  const w = new Writer();
  let title: string | undefined;
  let firstH1: string | undefined;
  let heading = 0;
  let headingText = '';
  let pre = 0;
  let skip = 0;
  const lists: { ordered: boolean; n: number }[] = [];
  let cell = 0;
  let i = 0;

  const emitText = (raw: string) => {
    if (skip || !raw) return;
    let text = decodeEntities(raw);
    if (heading) {
      text = text.replace(/[\s\u00a0]+/g, ' ');
      headingText += text;
    }
    w.text(text, pre > 0 && !heading);
  };

  while (i < source.length) {
    const lt = source.indexOf('<', i);
    if (lt < 0) {
      emitText(source.slice(i));
      break;
    }
    emitText(source.slice(i, lt));
    i = lt;
    // Comments, doctype, CDATA and processing instructions carry no content.
    if (source.startsWith('<!--', i)) {
      const end = source.indexOf('-->', i + 4);
      i = end < 0 ? source.length : end + 3;
      continue;
    }
    if (source.startsWith('<!', i) || source.startsWith('<?', i)) {
      const end = source.indexOf('>', i);
      i = end < 0 ? source.length : end + 1;
      continue;
    }
    TAG.lastIndex = i;
    const m = TAG.exec(source);
    if (!m) {
      emitText('<'); // a lone "<" in text
      i++;
      continue;
    }
    i = TAG.lastIndex;
    const closing = m[1] === '/';
    const name = m[2]!.toLowerCase();
    const selfClosing = /\/\s*$/.test(m[3] ?? '');

    if (!closing && RAW_TEXT.has(name) && !selfClosing) {
      const close = new RegExp(`</${name}\\s*>`, 'gi');
      close.lastIndex = i;
      const end = close.exec(source);
      const content = source.slice(i, end ? end.index : source.length);
      i = end ? close.lastIndex : source.length;
      if (name === 'title') title ??= decodeEntities(content).replace(/\s+/g, ' ').trim() || undefined;
      else if (name === 'xmp' && !skip) emitText(content);
      continue;
    }
    if (SKIPPED.has(name)) {
      if (!selfClosing) skip = Math.max(0, skip + (closing ? -1 : 1));
      continue;
    }
    if (skip) continue;

    if (/^h[1-6]$/.test(name)) {
      w.breakLine(2);
      if (!closing) {
        heading = Number(name[1]);
        headingText = '';
        w.setPrefix(`${'#'.repeat(heading)} `);
      } else {
        if (heading === 1 && !firstH1) firstH1 = headingText.trim() || undefined;
        heading = 0;
        w.setPrefix('');
      }
      continue;
    }
    switch (name) {
      case 'br':
        if (heading) w.text(' ', false);
        else w.breakLine(1, true);
        break;
      case 'hr':
        w.breakLine(2);
        break;
      case 'pre':
        if (!closing) {
          w.breakLine(2);
          w.raw('```');
          w.breakLine(1);
          pre++;
          if (source[i] === '\n') i++; // a newline right after <pre> is not content
        } else if (pre) {
          pre--;
          w.breakLine(1);
          w.raw('```');
          w.breakLine(2);
        }
        break;
      case 'ul':
      case 'ol':
        w.breakLine(lists.length > (closing ? 1 : 0) ? 1 : 2); // a nested list continues its parent list
        if (closing) lists.pop();
        else lists.push({ ordered: name === 'ol', n: 0 });
        break;
      case 'li':
        w.breakLine(1);
        if (!closing) {
          const list = lists[lists.length - 1];
          const indent = '  '.repeat(Math.max(0, lists.length - 1));
          w.setPrefix(list?.ordered ? `${indent}${++list.n}. ` : `${indent}- `);
        }
        break;
      case 'tr':
        w.breakLine(1);
        cell = 0;
        break;
      case 'td':
      case 'th':
        if (!closing && cell++ > 0) w.text(' | ', true);
        break;
      default:
        if (BLOCK.has(name)) w.breakLine(2);
    }
  }
  return { text: w.result(), title: title ?? firstH1 };
}
