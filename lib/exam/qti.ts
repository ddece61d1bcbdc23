/**
 * IMS QTI 2.1 export, as a content package's files (no zip):
 *   - `imsmanifest.xml` (IMS CP 1.1): one `imsqti_test_xmlv2p1` resource for the
 *     test, depending on one `imsqti_item_xmlv2p1` resource per item;
 *   - `assessmentTest.xml`: one testPart (linear, individual) with one section
 *     referencing every item, and a SCORE summed over the items;
 *   - `items/Qnn.xml`: one assessmentItem per question (namespace
 *     http://www.imsglobal.org/xsd/imsqti_v2p1).
 *
 * Items: MULTIPLE_CHOICE and TRUE_FALSE are a choiceInteraction (maxChoices 1,
 * simpleChoice identifiers A–D, or TRUE/FALSE) with a single-identifier
 * responseDeclaration whose correctResponse is the key; FILL_IN_THE_BLANK is a
 * textEntryInteraction in place of the blank, SHORT_ANSWER one after the stem,
 * each with a string responseDeclaration: correctResponse and a mapping
 * (reference and accepted forms → 1, case-insensitive). Response processing
 * sets SCORE (match_correct, or the mapping) and FEEDBACK, which shows the
 * modalFeedback with the explanation and source; a rubricBlock for scorers
 * repeats the source (document, page, chunk, sentence) and the key.
 */
import { BLANK, pageLabel } from './text.js';
import type { Exam, ExamQuestionDraft } from './types.js';
import { escapeXml } from './xml.js';

export const QTI_NS = 'http://www.imsglobal.org/xsd/imsqti_v2p1';
const QTI_XSD = 'http://www.imsglobal.org/xsd/qti/qtiv2p1/imsqti_v2p1.xsd';
const CP_NS = 'http://www.imsglobal.org/xsd/imscp_v1p1';
const CP_XSD = 'http://www.imsglobal.org/xsd/imscp_v1p1.xsd';
const XSI = 'http://www.w3.org/2001/XMLSchema-instance';

export interface QtiPackage {
  files: { path: string; content: string }[];
}

const CHOICE_IDS = ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H'];

export function itemIdentifier(i: number): string {
  return `Q${String(i + 1).padStart(2, '0')}`;
}

function head(q: ExamQuestionDraft, id: string, title: string): string[] {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<assessmentItem xmlns="${QTI_NS}" xmlns:xsi="${XSI}" xsi:schemaLocation="${QTI_NS} ${QTI_XSD}"`,
    `  identifier="${id}" title="${escapeXml(title)}" adaptive="false" timeDependent="false">`,
  ];
}

function scorerRubric(q: ExamQuestionDraft): string {
  const s = q.source;
  const key =
    q.type === 'MULTIPLE_CHOICE'
      ? `Key: ${CHOICE_IDS[q.answerIndex ?? 0]} (${q.options?.[q.answerIndex ?? 0] ?? ''})`
      : q.type === 'TRUE_FALSE'
        ? `Key: ${q.answerBool ? 'TRUE' : 'FALSE'}`
        : q.type === 'SHORT_ANSWER'
          ? `Reference answer: ${q.answerText ?? ''} Key terms: ${(q.keyTerms ?? []).join('; ')}`
          : `Answer: ${[q.answerText ?? '', ...(q.acceptedAnswers ?? [])].join(' | ')}`;
  return [
    '    <rubricBlock view="scorer">',
    `      <p>${escapeXml(key)}</p>`,
    `      <p>${escapeXml(`Source: ${s.documentTitle} (document ${s.documentId}, chunk ${s.chunkId}), ${pageLabel(s)}: \u201c${s.sentence}\u201d`)}</p>`,
    '    </rubricBlock>',
  ].join('\n');
}

const outcomes = [
  '  <outcomeDeclaration identifier="SCORE" cardinality="single" baseType="float">',
  '    <defaultValue><value>0</value></defaultValue>',
  '  </outcomeDeclaration>',
  '  <outcomeDeclaration identifier="FEEDBACK" cardinality="single" baseType="identifier"/>',
];

function processing(scoreExpr: string): string[] {
  return [
    '  <responseProcessing>',
    scoreExpr,
    '    <setOutcomeValue identifier="FEEDBACK"><baseValue baseType="identifier">EXPLANATION</baseValue></setOutcomeValue>',
    '  </responseProcessing>',
  ];
}

const MATCH_CORRECT = [
  '    <responseCondition>',
  '      <responseIf>',
  '        <match><variable identifier="RESPONSE"/><correct identifier="RESPONSE"/></match>',
  '        <setOutcomeValue identifier="SCORE"><baseValue baseType="float">1</baseValue></setOutcomeValue>',
  '      </responseIf>',
  '      <responseElse>',
  '        <setOutcomeValue identifier="SCORE"><baseValue baseType="float">0</baseValue></setOutcomeValue>',
  '      </responseElse>',
  '    </responseCondition>',
].join('\n');

const MAP_RESPONSE = '    <setOutcomeValue identifier="SCORE"><mapResponse identifier="RESPONSE"/></setOutcomeValue>';

function modalFeedback(q: ExamQuestionDraft): string {
  return `  <modalFeedback outcomeIdentifier="FEEDBACK" identifier="EXPLANATION" showHide="show"><p>${escapeXml(q.explanation)}</p></modalFeedback>`;
}

function choiceItem(q: ExamQuestionDraft, id: string, title: string): string {
  const tf = q.type === 'TRUE_FALSE';
  const choices = tf
    ? [
        ['TRUE', 'True'],
        ['FALSE', 'False'],
      ]
    : (q.options ?? []).map((o, i) => [CHOICE_IDS[i]!, o]);
  const correct = tf ? (q.answerBool ? 'TRUE' : 'FALSE') : CHOICE_IDS[q.answerIndex ?? 0]!;
  return [
    ...head(q, id, title),
    '  <responseDeclaration identifier="RESPONSE" cardinality="single" baseType="identifier">',
    `    <correctResponse><value>${correct}</value></correctResponse>`,
    '  </responseDeclaration>',
    ...outcomes,
    '  <itemBody>',
    scorerRubric(q),
    `    <p>${escapeXml(q.stem)}</p>`,
    `    <choiceInteraction responseIdentifier="RESPONSE" shuffle="false" maxChoices="1">`,
    ...choices.map(([cid, text]) => `      <simpleChoice identifier="${cid}">${escapeXml(text!)}</simpleChoice>`),
    '    </choiceInteraction>',
    '  </itemBody>',
    ...processing(MATCH_CORRECT),
    modalFeedback(q),
    '</assessmentItem>',
    '',
  ].join('\n');
}

function textItem(q: ExamQuestionDraft, id: string, title: string): string {
  const answers = [q.answerText ?? '', ...(q.type === 'FILL_IN_THE_BLANK' ? (q.acceptedAnswers ?? []) : [])].filter(Boolean);
  const unique = answers.filter((a, i) => answers.findIndex((b) => b.toLowerCase() === a.toLowerCase()) === i);
  const expected = Math.max(10, ...unique.map((a) => a.length));
  const entry = `<textEntryInteraction responseIdentifier="RESPONSE" expectedLength="${expected}"/>`;
  let body: string;
  if (q.type === 'FILL_IN_THE_BLANK' && q.stem.includes(BLANK)) {
    const at = q.stem.indexOf(BLANK);
    body = `    <p>${escapeXml(q.stem.slice(0, at))}${entry}${escapeXml(q.stem.slice(at + BLANK.length))}</p>`;
  } else {
    body = `    <p>${escapeXml(q.stem)}</p>\n    <p>${entry}</p>`;
  }
  return [
    ...head(q, id, title),
    '  <responseDeclaration identifier="RESPONSE" cardinality="single" baseType="string">',
    `    <correctResponse><value>${escapeXml(unique[0] ?? '')}</value></correctResponse>`,
    '    <mapping defaultValue="0" lowerBound="0" upperBound="1">',
    ...unique.map((a) => `      <mapEntry mapKey="${escapeXml(a)}" mappedValue="1" caseSensitive="false"/>`),
    '    </mapping>',
    '  </responseDeclaration>',
    ...outcomes,
    '  <itemBody>',
    scorerRubric(q),
    body,
    '  </itemBody>',
    ...processing(MAP_RESPONSE),
    modalFeedback(q),
    '</assessmentItem>',
    '',
  ].join('\n');
}

function testXml(exam: Exam, ids: string[]): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<assessmentTest xmlns="${QTI_NS}" xmlns:xsi="${XSI}" xsi:schemaLocation="${QTI_NS} ${QTI_XSD}"`,
    `  identifier="TEST" title="${escapeXml(exam.title)}">`,
    '  <outcomeDeclaration identifier="SCORE" cardinality="single" baseType="float">',
    '    <defaultValue><value>0</value></defaultValue>',
    '  </outcomeDeclaration>',
    '  <testPart identifier="PART1" navigationMode="linear" submissionMode="individual">',
    '    <assessmentSection identifier="SECTION1" title="Questions" visible="true">',
    ...ids.map((id) => `      <assessmentItemRef identifier="${id}" href="items/${id}.xml"/>`),
    '    </assessmentSection>',
    '  </testPart>',
    '  <outcomeProcessing>',
    '    <setOutcomeValue identifier="SCORE"><sum><testVariables variableIdentifier="SCORE"/></sum></setOutcomeValue>',
    '  </outcomeProcessing>',
    '</assessmentTest>',
    '',
  ].join('\n');
}

function manifestXml(exam: Exam, ids: string[]): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<manifest xmlns="${CP_NS}" xmlns:xsi="${XSI}" xsi:schemaLocation="${CP_NS} ${CP_XSD}" identifier="MANIFEST-EXAM">`,
    '  <metadata>',
    '    <schema>QTIv2.1 Package</schema>',
    '    <schemaversion>1.0.0</schemaversion>',
    '  </metadata>',
    '  <organizations/>',
    '  <resources>',
    '    <resource identifier="RES-TEST" type="imsqti_test_xmlv2p1" href="assessmentTest.xml">',
    '      <file href="assessmentTest.xml"/>',
    ...ids.map((id) => `      <dependency identifierref="RES-${id}"/>`),
    '    </resource>',
    ...ids.map((id) =>
      [
        `    <resource identifier="RES-${id}" type="imsqti_item_xmlv2p1" href="items/${id}.xml">`,
        `      <file href="items/${id}.xml"/>`,
        '    </resource>',
      ].join('\n'),
    ),
    '  </resources>',
    '</manifest>',
    '',
  ].join('\n');
}

/** The exam as a QTI 2.1 package: manifest, test and one item file per question. */
export function toQti(exam: Exam): QtiPackage {
  const ids = exam.questions.map((_, i) => itemIdentifier(i));
  const items = exam.questions.map((q, i) => {
    const id = ids[i]!;
    const title = `${id} ${q.type}`;
    const content = q.type === 'MULTIPLE_CHOICE' || q.type === 'TRUE_FALSE' ? choiceItem(q, id, title) : textItem(q, id, title);
    return { path: `items/${id}.xml`, content };
  });
  return {
    files: [
      { path: 'imsmanifest.xml', content: manifestXml(exam, ids) },
      { path: 'assessmentTest.xml', content: testXml(exam, ids) },
      ...items,
    ],
  };
}
