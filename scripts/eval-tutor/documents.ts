/**
 * The generated material of `npm run eval:tutor`: four short documents on unrelated subjects,
 * written for this evaluation and turned into PDFs at run time (tests/support/pdf-fixtures.ts
 * `makeTextPdf`, one PDF page per entry of `pages`), so the facts the questions ask about sit on
 * known pages. The real material, ../shared/corpus/pdfs/tracemonkey.pdf, is read from disk.
 *
 * Which half of the question set each material belongs to is fixed here (`HALF`): the lib/tutor
 * settings were tuned on the "tuning" half only; the "held-out" half measures them.
 */

export type MaterialKey = 'tracemonkey' | 'bees' | 'printing' | 'volcanoes' | 'heart';
export type Half = 'tuning' | 'held-out' | 'held-out-2';
export const HALVES: readonly Half[] = ['tuning', 'held-out', 'held-out-2'];

/**
 * Round 1: lib/tutor was tuned on the tuning half (tracemonkey, bees) and measured on the
 * held-out half (printing, volcanoes). Round 2: the heart document and its questions were
 * written after round 1, before any further change; the changes of round 2 looked at the first
 * two halves, and held-out-2 measures them.
 */
export const HALF: Readonly<Record<MaterialKey, Half>> = {
  tracemonkey: 'tuning',
  bees: 'tuning',
  printing: 'held-out',
  volcanoes: 'held-out',
  heart: 'held-out-2',
};

export interface GeneratedDocument {
  key: Exclude<MaterialKey, 'tracemonkey'>;
  title: string;
  headings: string[];
  /** One entry per page, each a list of paragraphs. */
  pages: string[][];
}

export const BEES: GeneratedDocument = {
  key: 'bees',
  title: 'Honeybees: a field guide',
  headings: ['The colony', 'The life of a worker', 'How bees communicate', 'Honey and pollination'],
  pages: [
    [
      'A honeybee colony is a family of insects that lives together in a single nest, the hive. A strong colony in summer can hold around 50,000 bees, and almost all of them are workers, which are sterile females.',
      'Each colony has one queen, the only female that lays eggs. At the height of the season she can lay up to 1,500 eggs in a day. The males are called drones. Their single task is to mate with a queen from another colony, and they die soon after mating.',
      'In autumn the workers push the remaining drones out of the hive, because the colony cannot afford to feed them through the winter. A colony that grows crowded in spring may swarm: the old queen leaves with about half of the workers to found a new nest.',
    ],
    [
      'A worker bee develops from egg to adult in 21 days, passing through the larva and pupa stages inside a wax cell. During the first weeks of her adult life she works inside the hive: she cleans cells, feeds larvae, builds comb and guards the entrance.',
      "Wax is made by glands on the underside of the worker's abdomen and shaped into six-sided cells. Only when she is about three weeks old does she begin to forage outside for nectar, pollen and water.",
      'A summer worker lives for only five to six weeks, worn out by flying, while workers born in autumn can survive for several months and carry the colony through the cold season. Queens are raised in special large cells and fed only royal jelly, a protein-rich secretion made by young workers.',
    ],
    [
      'Foragers tell their sisters where food is by dancing on the comb. The round dance announces food close to the hive, less than about 50 metres away. For more distant flowers a bee performs the waggle dance.',
      'In the waggle dance, the angle of the straight run relative to vertical shows the direction of the food relative to the sun, and the duration of the run tells the distance. The Austrian scientist Karl von Frisch decoded this language and received the Nobel Prize in Physiology or Medicine in 1973 for the work.',
      "Bees also communicate with scents called pheromones. The queen's pheromone keeps the colony calm and stops workers from raising new queens, and guards release an alarm scent that smells of bananas when the hive is attacked.",
    ],
    [
      'Honey is made from nectar. Foragers carry the nectar home in a honey stomach, and in the hive other workers add enzymes and spread it thinly in the comb. The bees fan their wings to evaporate water until the honey contains less than about 18 percent water, and then seal the cell with a wax cap.',
      'To make one kilogram of honey, the bees of a colony must visit several million flowers. A colony eats much of what it makes: it needs roughly 20 kilograms of stored honey to survive a northern winter.',
      'Beyond honey, bees matter because they pollinate crops. About a third of the food we eat depends on animal pollinators such as bees. The almond orchards of California are an example of a crop that relies almost entirely on hired honeybee colonies brought in by truck each spring.',
    ],
  ],
};

export const PRINTING: GeneratedDocument = {
  key: 'printing',
  title: 'The printing revolution',
  headings: ['Books before printing', "Gutenberg's invention", 'The spread of printing', 'What printing changed'],
  pages: [
    [
      'Before the fifteenth century, books in Europe were copied by hand. Monks working in a room called a scriptorium could spend more than a year copying a single Bible, and a large library owned only a few hundred volumes.',
      'Pages were written on parchment, a material made from the skins of calves, sheep or goats. Paper had reached Europe from the Islamic world, and by the fourteenth century paper mills were working in Italy.',
      'Woodblock printing, in which a whole page is carved into a single block of wood, was already in use for playing cards and religious pictures. Carving a new block for every page made it far too slow for long books.',
    ],
    [
      'Johannes Gutenberg, a goldsmith from the German city of Mainz, developed a system of movable metal type around 1450. Each letter was cast separately in a hand mould from an alloy of lead, tin and antimony, so that worn letters could be replaced and the same letters reused for many pages.',
      'Gutenberg also prepared an oil-based ink that stuck to metal better than the water-based inks of scribes. His press was adapted from the screw presses used to make wine and olive oil.',
      'The most famous book he printed is a Latin Bible with 42 lines on each page, finished around 1455. About 180 copies were made, and 49 are known to survive today. Gutenberg borrowed heavily to pay for the work and lost his workshop to his financial partner, Johann Fust.',
    ],
    [
      'Printing spread quickly along the trade routes. By 1500, presses were working in more than 250 European towns, and they had produced some twenty million volumes.',
      'Venice became the largest printing centre of the period. The printer Aldus Manutius worked there and introduced the italic typeface and small books that could be carried in a pocket.',
      'In England, William Caxton set up the first press at Westminster in 1476, and the first book he printed in England was an edition of Chaucer\'s "Canterbury Tales". Books printed before 1501 are called incunabula, from a Latin word for cradle.',
    ],
    [
      "Cheaper books changed who could read and what they read. Martin Luther's writings were printed in huge numbers after 1517, and pamphlets carried the ideas of the Reformation across Germany within weeks.",
      "Printing also helped fix the spelling of languages, because printers needed one spelling for each word. Scientists could share exact copies of diagrams and tables, which made it easier to check and build on each other's results.",
      'Governments and churches soon tried to control presses through licences and lists of banned books. Even so, the number of people who could read grew steadily over the next two centuries.',
    ],
  ],
};

export const VOLCANOES: GeneratedDocument = {
  key: 'volcanoes',
  title: 'Volcanoes: an introduction',
  headings: ['What a volcano is', 'Kinds of volcano', 'Eruptions and their dangers', 'Measuring and forecasting'],
  pages: [
    [
      "A volcano is an opening in the Earth's crust through which molten rock, gases and ash escape. Molten rock below the surface is called magma; once it reaches the surface it is called lava.",
      "Most volcanoes form along the edges of tectonic plates. Where one plate sinks beneath another, a process called subduction, melting produces sticky magma rich in silica. The Pacific Ring of Fire follows such plate edges around the ocean and holds most of the world's active volcanoes.",
      'Some volcanoes, such as those of Hawaii, lie far from plate edges above a hotspot, a plume of hot rock rising from deep in the mantle. As the plate moves over the hotspot, a chain of islands forms, the oldest farthest away.',
    ],
    [
      'Shield volcanoes are broad, gentle mountains built by runny basalt lava that flows a long way before it cools. Mauna Loa in Hawaii is the largest active volcano on Earth and is a shield volcano.',
      'Stratovolcanoes, also called composite volcanoes, are steep cones made of alternating layers of lava and ash. Mount Fuji in Japan is a well-known example.',
      'Cinder cones are the smallest type: they are built from loose fragments thrown out around a single vent and rarely grow taller than 300 metres. A caldera is a large basin that forms when the ground collapses after a magma chamber empties.',
    ],
    [
      'How explosive an eruption is depends mainly on the viscosity of the magma and how much gas it holds. Thick magma traps gas until the pressure shatters it into ash, while runny magma lets gas escape gently.',
      'The most dangerous hazard is the pyroclastic flow, a fast avalanche of hot gas and rock fragments that can travel at more than 100 kilometres per hour. In AD 79 such flows from Mount Vesuvius buried the Roman towns of Pompeii and Herculaneum.',
      'Volcanic mudflows, called lahars, form when ash mixes with water from rain or melting snow. In 1985 a lahar from Nevado del Ruiz destroyed the Colombian town of Armero.',
    ],
    [
      'Scientists rank eruptions on the Volcanic Explosivity Index, a scale from 0 to 8 in which each step means roughly ten times more material thrown out. The 1815 eruption of Tambora in Indonesia reached 7 on this scale, and the following year became known in Europe and North America as the year without a summer.',
      'To forecast eruptions, volcanologists record small earthquakes beneath a volcano with seismometers, measure the swelling of the ground, and sample gases such as sulfur dioxide.',
      'A rise in these signals does not give an exact date, but it allowed the authorities to evacuate tens of thousands of people before Mount Pinatubo erupted in the Philippines in 1991.',
    ],
  ],
};

export const HEART: GeneratedDocument = {
  key: 'heart',
  title: 'The human heart',
  headings: ['Structure of the heart', 'Valves and the heartbeat', 'Circulation', 'Keeping the heart healthy'],
  pages: [
    [
      'The human heart is a muscular pump about the size of a closed fist. It sits in the chest between the lungs, slightly to the left of the breastbone.',
      'The heart has four chambers: two upper chambers called atria, which receive blood, and two lower chambers called ventricles, which pump it out. A wall of muscle called the septum separates the left side of the heart from the right side, so that blood rich in oxygen never mixes with blood that has given up its oxygen.',
      'The wall of the left ventricle is the thickest, because it must push blood around the whole body. The right ventricle only has to send blood the short distance to the lungs.',
    ],
    [
      'Four valves keep blood flowing in one direction. The tricuspid valve lies between the right atrium and the right ventricle, and the mitral valve between the left atrium and the left ventricle.',
      "The familiar 'lub-dub' sound of the heartbeat is made by the valves snapping shut. Each beat starts at the sinoatrial node, a small patch of tissue in the wall of the right atrium that acts as a natural pacemaker.",
      'At rest an adult heart beats about 60 to 100 times a minute and pumps roughly five litres of blood every minute. During hard exercise the output can rise to more than 20 litres a minute.',
    ],
    [
      'Blood travels in two loops. In the pulmonary circulation, the right ventricle sends blood to the lungs, where it picks up oxygen and releases carbon dioxide. In the systemic circulation, the left ventricle sends oxygen-rich blood through the aorta, the largest artery in the body, to every organ.',
      'Arteries carry blood away from the heart and have thick, elastic walls; veins carry it back and contain small valves that stop it from flowing backwards. Between them lie capillaries, vessels so narrow that red blood cells pass through them in single file.',
      'The English physician William Harvey first described the circulation of the blood in 1628.',
    ],
    [
      'The heart muscle gets its own blood supply from the coronary arteries. If fatty deposits block one of these arteries, part of the muscle is starved of oxygen and a heart attack follows.',
      'Blood pressure is written as two numbers: the higher one is measured while the ventricles contract and the lower one while they relax. A reading of around 120 over 80 is considered normal for an adult.',
      'Regular exercise, not smoking and a diet low in salt all lower the risk of heart disease, which is the leading cause of death worldwide.',
    ],
  ],
};

export const GENERATED: readonly GeneratedDocument[] = [BEES, PRINTING, VOLCANOES, HEART];

/** The real paper, ../shared/corpus/pdfs/tracemonkey.pdf (14 pages), under its own title. */
export const TRACEMONKEY = { key: 'tracemonkey' as const, title: 'Trace-based Just-in-Time Type Specialization for Dynamic Languages' };
