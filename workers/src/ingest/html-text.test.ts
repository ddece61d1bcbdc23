import { describe, expect, it } from '@jest/globals';
import { decodeEntities, htmlToText } from './html-text.js';

describe('htmlToText', () => {
  it('keeps structure: headings, paragraphs, nested lists, tables and preformatted code', () => {
    const { text, title } = htmlToText(`<html><head><title>Cells</title><script>var s = "<h1>no</h1>";</script></head><body>
      <h1>The <em>Cell</em></h1><div><div><p>First   paragraph
      spans lines.</p></div></div>
      <ol><li>Nucleus<ul><li>DNA</li></ul></li><li>Ribosome</li></ol>
      <table><tr><th>Part</th><th>Role</th></tr><tr><td>Wall</td><td>Support</td></tr></table>
      <pre>
def area(r):
    # not a heading
    return 3.14 * r * r
</pre><p>Done<br>here.</p><!-- <h2>hidden</h2> --><noscript>Enable JS</noscript></body></html>`);
    expect(title).toBe('Cells');
    expect(text).toBe(
      [
        '# The Cell',
        '',
        'First paragraph spans lines.',
        '',
        '1. Nucleus',
        '  - DNA',
        '2. Ribosome',
        '',
        'Part | Role',
        'Wall | Support',
        '',
        '```',
        'def area(r):',
        '    # not a heading',
        '    return 3.14 * r * r',
        '```',
        '',
        'Done',
        'here.',
      ].join('\n'),
    );
  });

  it('survives broken markup: unclosed tags, stray < and > in text, quoted > in attributes', () => {
    const { text } = htmlToText('<p>1 < 2 and 3 > 2<p>unclosed <b>bold<div title="a>b">inside</div> tail');
    expect(text).toBe('1 < 2 and 3 > 2\n\nunclosed bold\n\ninside\n\ntail');
  });

  it('uses the first h1 as title when there is no <title>', () => {
    expect(htmlToText('<h1>Only &amp; heading</h1><p>x</p>').title).toBe('Only & heading');
  });

  it('stays linear on hostile input', () => {
    const started = performance.now();
    htmlToText('<a x'.repeat(250_000));
    htmlToText('<a "'.repeat(250_000));
    // About half a second here; a quadratic parser would take minutes. Generous, so a busy machine cannot fail it.
    expect(performance.now() - started).toBeLessThan(15_000);
  });
});

describe('decodeEntities', () => {
  it('decodes named, decimal and hex references, windows-1252 numerics and invalid code points', () => {
    expect(decodeEntities('&lt;&eacute;&amp;&#233;&#xE9;&#x1F600;&#150;&#0;&#xD800;&unknown;&amp')).toBe('<é&éé😀–\ufffd\ufffd&unknown;&');
  });
});
