import { describe, expect, it } from '@jest/globals';
import { completeUtf8Length, detectFormat, SNIFF_BYTES } from './uploads.js';

const PDF = Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n', 'latin1');
const PNG = Buffer.concat([Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'), Buffer.from([0, 0, 0, 13]), Buffer.from('IHDR'), Buffer.alloc(20)]);
const zip = (firstEntry: string) =>
  Buffer.concat([
    Buffer.from([0x50, 0x4b, 3, 4, 20, 0, 6, 0, 8, 0]),
    Buffer.alloc(16),
    Buffer.from(firstEntry, 'latin1'),
    Buffer.alloc(64, 7),
  ]);
const utf8 = (s: string) => Buffer.from(s, 'utf8');
const unsupported = (buf: Buffer, name?: string) => {
  const result = detectFormat(buf, name);
  expect(result).toHaveProperty('unsupported');
  return (result as { unsupported: string }).unsupported;
};
const format = (buf: Buffer, name?: string) => {
  const result = detectFormat(buf, name);
  expect(result).toHaveProperty('format');
  return (result as { format: string }).format;
};

describe('detectFormat', () => {
  it('recognises a PDF by its %PDF- header, whatever the file is called', () => {
    expect(detectFormat(PDF, 'slides.pdf')).toStrictEqual({ format: 'PDF', mime: 'application/pdf' });
    expect(format(PDF, 'notes.txt')).toBe('PDF');
    expect(format(PDF)).toBe('PDF');
  });

  it('accepts a BOM and whitespace before the PDF header within the first KB, not beyond', () => {
    expect(format(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), utf8('\r\n  \n'), PDF]))).toBe('PDF');
    expect(format(Buffer.concat([utf8(' '.repeat(1000)), PDF]))).toBe('PDF');
    expect(format(utf8(`${' '.repeat(1100)}%PDF-1.4\n`))).toBe('TEXT');
    // Text that merely mentions the header is not a PDF.
    expect(format(utf8('A PDF file starts with %PDF-1.7 on its first line.\n'))).toBe('TEXT');
  });

  it('refuses a PNG named x.pdf, naming what it is', () => {
    expect(unsupported(PNG, 'x.pdf')).toBe('a PNG image');
  });

  it('names common binary formats', () => {
    const cases: [number[] | string, string][] = [
      [[0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46], 'a JPEG image'],
      ['GIF89a\x01\x00\x01\x00', 'a GIF image'],
      [[0x1f, 0x8b, 8, 0, 0, 0, 0, 0], 'a gzip archive'],
      [[0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 'a program (ELF executable)'],
      [[0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1, 0, 0], 'an old Microsoft Office file (.doc, .xls or .ppt)'],
      ['{\\rtf1\\ansi\\deff0 {\\fonttbl}', 'an RTF document'],
      ['RIFF\x24\x00\x00\x00WEBPVP8 ', 'a WebP image'],
      ['\x00\x00\x00\x18ftypmp42\x00\x00', 'a video or audio file (MP4)'],
      [[0xff, 0xfe, 0x48, 0, 0x69, 0], 'a UTF-16 text file'],
      ['MZ\x90\x00\x03\x00\x00\x00', 'a Windows program'],
    ];
    for (const [bytes, name] of cases) {
      const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes);
      expect(unsupported(Buffer.concat([buf, Buffer.alloc(32)]), 'lesson.md')).toBe(name);
    }
  });

  it('calls a ZIP a ZIP archive, and names Office and OpenDocument files when it can tell', () => {
    expect(unsupported(zip('data.csv'), 'lesson.md')).toBe('a ZIP archive (for example a .docx)');
    expect(unsupported(zip('[Content_Types].xml\0\0_rels/.rels\0word/document.xml'))).toBe('a Word document (.docx)');
    expect(unsupported(zip('[Content_Types].xml\0\0xl/workbook.xml'))).toBe('an Excel workbook (.xlsx)');
    expect(unsupported(zip('mimetypeapplication/vnd.oasis.opendocument.text'))).toBe('an OpenDocument file (.odt, .ods or .odp)');
  });

  it('calls NUL bytes, invalid UTF-8 or many control characters a binary file', () => {
    expect(unsupported(Buffer.concat([utf8('hello'), Buffer.from([0]), utf8('world')]), 'a.txt')).toBe('a binary file');
    expect(unsupported(Buffer.from('caf\xe9 cr\xe8me br\xfbl\xe9e, a Latin-1 file', 'latin1'), 'a.txt')).toBe('a binary file');
    expect(unsupported(Buffer.from([0x41, 0x01, 0x02, 0x03, 0x41, 0x42, 0x05, 0x06, 0x43, 0x44]))).toBe('a binary file');
    expect(unsupported(Buffer.from([0xc3, 0x28, 0x41]))).toBe('a binary file');
  });

  it('treats text that starts like a weak signature ("MZ", "BZh") as text', () => {
    expect(format(utf8('MZ is the signature of DOS executables.\n'))).toBe('TEXT');
    expect(format(utf8('BZh is how bzip2 files start.\n'))).toBe('TEXT');
  });

  it('accepts UTF-8 text cut in the middle of a character at the end of the sniffed bytes', () => {
    const text = utf8(`${'Grüße aus Köln. '.repeat(600)}€`);
    const cut = text.subarray(0, text.length - 1); // drops the last byte of the euro sign
    expect(format(cut)).toBe('TEXT');
    expect(format(utf8('na\u00efve caf\u00e9 \u{1F600}\n'))).toBe('TEXT');
  });

  it('recognises HTML documents and tag-heavy fragments', () => {
    expect(detectFormat(utf8('<!DOCTYPE html>\n<html><head><title>x</title></head><body>Hi</body></html>'))).toStrictEqual({
      format: 'HTML',
      mime: 'text/html',
    });
    expect(format(utf8('\ufeff  <!-- generated -->\n<html lang="en">\n<p>Hello</p>'), 'notes.md')).toBe('HTML');
    expect(format(utf8('<?xml version="1.0"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN">\n<html>'))).toBe('HTML');
    expect(
      format(
        utf8('<div class="lesson">\n<h2>Fractions</h2>\n<p>A fraction has a <em>numerator</em> and a <b>denominator</b>.</p>\n</div>'),
        'x.txt',
      ),
    ).toBe('HTML');
  });

  it('keeps Markdown that shows or embeds some HTML as Markdown', () => {
    const lesson = [
      '# HTML basics',
      '',
      'A paragraph is written like this:',
      '',
      '```html',
      '<div><p>One</p><p>Two</p><p>Three</p><span>Four</span></div>',
      '<ul><li>a</li><li>b</li><li>c</li></ul>',
      '```',
      '',
      'Use `<br>` sparingly. See [MDN](https://developer.mozilla.org/).',
    ].join('\n');
    expect(format(utf8(lesson))).toBe('MARKDOWN');
    expect(
      format(utf8('<p align="center"><img src="logo.png"></p>\n\n# Project\n\nSome **bold** words and a [link](https://x.y).\n')),
    ).toBe('MARKDOWN');
  });

  it('refuses SVG and other XML', () => {
    expect(unsupported(utf8('<svg xmlns="http://www.w3.org/2000/svg" width="10"></svg>'), 'x.html')).toBe('an SVG image');
    expect(unsupported(utf8('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBe('an SVG image');
    expect(unsupported(utf8('<?xml version="1.0"?>\n<catalog><book id="1"/></catalog>'))).toBe('an XML document');
  });

  it('calls text with Markdown structure Markdown, even when named .txt', () => {
    const md = '# Photosynthesis\n\nPlants turn **light** into sugar.\n\n- chlorophyll\n- water\n\nSee [the chapter](chapter-3.md).\n';
    expect(detectFormat(utf8(md), 'notes.txt')).toStrictEqual({ format: 'MARKDOWN', mime: 'text/markdown' });
    expect(format(utf8('Title\n=====\n\n> A quote\n\n1. first\n2. second\n'))).toBe('MARKDOWN');
    expect(format(utf8('| a | b |\n|---|---|\n| 1 | 2 |\n'))).toBe('MARKDOWN');
  });

  it('calls prose without structure text, even when named .md', () => {
    const prose = 'Plants turn light into sugar. They need water and carbon dioxide.\nThe process happens in the leaves.\n';
    expect(detectFormat(utf8(prose), 'notes.md')).toStrictEqual({ format: 'TEXT', mime: 'text/plain' });
    expect(format(utf8(prose))).toBe('TEXT');
  });

  it('lets the extension break a tie between Markdown and text, and nothing else', () => {
    const ambiguous = utf8('Shopping list for the lab:\n- beakers\n- pipettes\n');
    expect(format(ambiguous, 'list.md')).toBe('MARKDOWN');
    expect(format(ambiguous, 'list.txt')).toBe('TEXT');
    expect(format(ambiguous)).toBe('TEXT');
    expect(format(ambiguous, 'list.pdf')).toBe('TEXT');
    expect(format(utf8('# Heading only\n\nThen prose.\n'))).toBe('MARKDOWN');
    expect(format(utf8('# Heading only\n\nThen prose.\n'), 'a.txt')).toBe('TEXT');
  });

  it('looks at no more than SNIFF_BYTES', () => {
    const late = Buffer.concat([utf8('plain words '.repeat(Math.ceil(SNIFF_BYTES / 12))), Buffer.from([0, 0, 0])]);
    expect(format(late)).toBe('TEXT');
    expect(unsupported(Buffer.alloc(0))).toBe('an empty file');
  });

  it('stays fast on adversarial text', () => {
    const inputs = [
      '['.repeat(SNIFF_BYTES),
      '**a '.repeat(2000),
      `${' '.repeat(SNIFF_BYTES - 1)}x`,
      '<!--'.repeat(2000),
      '*_'.repeat(4000),
    ];
    const slow = inputs.filter((input) => {
      const started = performance.now();
      detectFormat(utf8(input));
      return performance.now() - started >= 200;
    });
    // The first characters of every input that took 200 ms or more.
    expect(slow.map((input) => input.slice(0, 10))).toStrictEqual([]);
  });
});

describe('completeUtf8Length', () => {
  it('drops only an incomplete final character', () => {
    const euro = utf8('€'); // e2 82 ac
    expect(completeUtf8Length(euro)).toBe(3);
    expect(completeUtf8Length(euro.subarray(0, 2))).toBe(0);
    expect(completeUtf8Length(Buffer.concat([utf8('ab'), euro.subarray(0, 1)]))).toBe(2);
    expect(completeUtf8Length(utf8('abc'))).toBe(3);
    expect(completeUtf8Length(utf8('a\u{1F600}').subarray(0, 4))).toBe(1);
    expect(completeUtf8Length(Buffer.alloc(0))).toBe(0);
  });
});
