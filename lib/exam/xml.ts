/** XML text helpers for the exports. */

/** Characters XML 1.0 forbids (C0 controls but tab, LF, CR; lone surrogates; U+FFFE/U+FFFF), removed. */
export function xmlSafe(text: string): string {
  return text.replace(
    /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
    '',
  );
}

/** Text or attribute content: & < > " ' escaped. */
export function escapeXml(text: string): string {
  return xmlSafe(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** HTML text (for HTML carried in CDATA): & < > " escaped. */
export function escapeHtml(text: string): string {
  return xmlSafe(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A CDATA section; a "]]>" in the text is split across two sections ("]]" + "]]><![CDATA[" + ">"). */
export function cdata(text: string): string {
  return `<![CDATA[${xmlSafe(text).replace(/\]\]>/g, ']]]]><![CDATA[>')}]]>`;
}
