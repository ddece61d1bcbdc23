/**
 * A small course for the tutor's tests: three documents (plant biology, the French Revolution,
 * Newton's laws), ten passages shaped like the ingestion worker's chunks (Markdown headings,
 * PDF line breaks, one word hyphenated across a line), and questions about it: on-topic ones
 * worded differently from the passages, and off-topic ones, several of which share words with
 * the course. Written for these tests.
 */
import type { TutorPassage } from '../types.js';

interface Doc {
  id: string;
  title: string;
}

const BIO: Doc = { id: 'doc-bio', title: 'Plant Biology: Energy and Growth' };
const HIST: Doc = { id: 'doc-hist', title: 'Europe 1750–1815' };
const PHYS: Doc = { id: 'doc-phys', title: 'Mechanics for Beginners' };

const raw: [Doc, number, number, string | null, string][] = [
  [
    BIO,
    12,
    12,
    'Photosynthesis: an overview',
    `# Photosynthesis: an overview

Photosynthesis is the process by which green plants, algae and some bacteria convert light
energy into chemical energy. Using energy from sunlight, the plant combines carbon dioxide taken
from the air with water drawn up from the soil. The products are glucose, a simple sugar the
plant uses as fuel and as a building block, and oxygen, which is released into the atmosphere as
a by-product. The overall reaction is often summarised as 6CO2 + 6H2O → C6H12O6 + 6O2. Almost all
life on Earth depends, directly or indirectly, on this process.`,
  ],
  [
    BIO,
    13,
    13,
    'Where photosynthesis happens',
    `In plants, photosynthesis takes place mainly in the leaves, inside or-
ganelles called chloroplasts. A single leaf cell may contain dozens of chloroplasts. Each
chloroplast holds stacks of flattened membrane sacs, the thylakoids, surrounded by a fluid
called the stroma. Chlorophyll, the green pigment embedded in the thylakoid membranes, absorbs
mostly red and blue light and reflects green light, which is why leaves look green. Carbon
dioxide enters the leaf through small pores on its underside called stomata, which the plant can
close to limit water loss.`,
  ],
  [
    BIO,
    14,
    14,
    'The light-dependent reactions',
    `# The light-dependent reactions

The first stage, the light-dependent reactions, happens in the thylakoid membranes. When
chlorophyll absorbs light, electrons are excited and passed along an electron transport chain.
Water molecules are split to replace these electrons, and this splitting of water is the source
of the oxygen that plants release. The energy carried by the electrons is used to make ATP and
NADPH, two energy-rich molecules that power the next stage.`,
  ],
  [
    BIO,
    15,
    16,
    'The Calvin cycle',
    `The second stage, known as the Calvin cycle or the light-independent reactions, takes place in
the stroma. Here the enzyme RuBisCO fixes carbon dioxide by attaching it to a five-carbon sugar.
Using the ATP and NADPH produced in the first stage, the cycle turns the fixed carbon into a
three-carbon sugar that the plant can use to build glucose, starch and cellulose.

The rate of photosynthesis depends on light intensity, carbon dioxide concentration and
temperature; when any one of these is in short supply, it limits the rate.`,
  ],
  [
    HIST,
    41,
    41,
    'Causes of the French Revolution',
    `# Causes of the French Revolution

By the late 1780s France was close to bankruptcy. Costly wars, including French support for the
American War of Independence, had left the crown deeply in debt, while the clergy and the
nobility paid little or no tax. Poor harvests in 1788 drove the price of bread to record highs,
and hunger spread in the cities. Enlightenment writers such as Rousseau and Voltaire had
encouraged people to question the absolute power of the king and the privileges of the first
two estates.`,
  ],
  [
    HIST,
    42,
    42,
    '1789: from the Estates-General to the Bastille',
    `To raise money, King Louis XVI summoned the Estates-General in May 1789, for the first time
since 1614. The representatives of the Third Estate, who spoke for the great majority of the
population, broke away and declared themselves the National Assembly. On 14 July 1789 a crowd in
Paris stormed the Bastille, a royal fortress and prison that stood for the arbitrary power of the
monarchy. The date is still celebrated as France's national holiday. In August the Assembly
abolished feudal privileges and adopted the Declaration of the Rights of Man and of the Citizen.`,
  ],
  [
    HIST,
    44,
    45,
    'The Terror and its end',
    `After the monarchy was abolished in September 1792, France was declared a republic, and
Louis XVI was executed in January 1793. Facing foreign invasion and revolts at home, the
Committee of Public Safety, led by Maximilien Robespierre, began the Reign of Terror. Between
1793 and 1794 tens of thousands of suspected enemies of the revolution were imprisoned, and
about 17,000 were officially executed, many by the guillotine. Robespierre himself was arrested
and guillotined in July 1794. In 1799 Napoleon Bonaparte seized power in a coup, which is
usually taken as the end of the revolution.`,
  ],
  [
    PHYS,
    7,
    7,
    "Newton's first law",
    `# Newton's first law

Newton's first law, often called the law of inertia, states that an object remains at rest, or
keeps moving in a straight line at a constant speed, unless an unbalanced force acts on it.
Inertia is the tendency of a body to resist changes in its motion, and the more mass an object
has, the greater its inertia. A book lying on a table stays put because the forces on it are
balanced: gravity pulls it down and the table pushes it up with an equal force. In the everyday
world, friction and air resistance are the unbalanced forces that eventually stop a rolling ball.`,
  ],
  [
    PHYS,
    8,
    8,
    "Newton's second law",
    `The second law connects force, mass and acceleration: the net force on an object equals its
mass multiplied by its acceleration, written F = ma. Force is measured in newtons; one newton is
the force needed to accelerate a mass of 1 kg at 1 m/s². For the same push, a heavier object
accelerates less than a lighter one. Doubling the net force on a given object doubles its
acceleration.`,
  ],
  [
    PHYS,
    9,
    9,
    "Newton's third law",
    `# Newton's third law

According to the third law, whenever one body exerts a force on another, the second body exerts
a force of equal size and opposite direction on the first. These action and reaction forces act
on different bodies, so they do not cancel each other out. A rocket moves forward because it
pushes exhaust gases backwards and the gases push the rocket forwards. Isaac Newton published
the three laws in 1687 in his Principia Mathematica.`,
  ],
];

/** The course's passages, numbered 1..10 in the order above. */
export const COURSE: TutorPassage[] = raw.map(([doc, pageStart, pageEnd, heading, text], i) => ({
  n: i + 1,
  chunkId: `${doc.id}:${i}`,
  documentId: doc.id,
  documentTitle: doc.title,
  pageStart,
  pageEnd,
  heading,
  text,
  score: 10 - i,
}));

/** Questions the course answers, worded as a student might, with the passage that answers each. */
export const ON_TOPIC: { question: string; passage: number }[] = [
  { question: 'How do plants turn sunlight into food?', passage: 1 },
  { question: 'Which gas do leaves give off as a by-product?', passage: 1 },
  { question: 'Why are most leaves green in colour?', passage: 2 },
  { question: 'What are the tiny openings that let carbon dioxide into a leaf?', passage: 2 },
  { question: 'What goes on during the light-dependent stage?', passage: 3 },
  { question: 'Where in the chloroplast is carbon fixed?', passage: 4 },
  { question: 'What limits how fast a plant can photosynthesise?', passage: 4 },
  { question: 'Why was France nearly broke before the revolution?', passage: 5 },
  { question: 'When did the crowd attack the Bastille?', passage: 6 },
  { question: 'Who was in charge of the Committee of Public Safety during the Terror?', passage: 7 },
  { question: 'What became of King Louis XVI?', passage: 7 },
  { question: 'How did the revolution finally end?', passage: 7 },
  { question: 'What does inertia mean?', passage: 8 },
  { question: 'If I push a heavy object and a light one equally hard, which accelerates more?', passage: 9 },
  { question: 'Why does a rocket go forward when it pushes gas out behind it?', passage: 10 },
];

/** Questions the course does not answer, several sharing words with it. */
export const OFF_TOPIC: string[] = [
  'Who won the 2018 world cup?',
  'What is the speed of light in a vacuum?',
  'How do I bake sourdough bread at home?',
  'What is the population of France today?',
  'Who painted the Mona Lisa?',
  'How does a nuclear reactor produce energy?',
  'What did Einstein discover about gravity?',
  'What are the symptoms of diabetes?',
  'Which planets in the solar system have rings?',
  'How do I reset my password?',
];
