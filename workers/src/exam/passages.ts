/**
 * The passages an exam is generated from: lib/exam/store.ts's sample of the selected ready
 * documents (see there for how a large course is sampled).
 */
import type { PrismaClient } from '@lib/db/client.js';
import type { ExamPassage } from '@lib/exam/index.js';
import { spreadPassages } from '@lib/exam/store.js';

export { spread } from '@lib/exam/store.js';

export interface PassageSelection {
  passages: ExamPassage[];
  /** Passages of the material before sampling. */
  total: number;
}

export function loadPassages(
  prisma: PrismaClient,
  exam: { courseId: string; documentIds: string[]; seed: number },
  max: number,
): Promise<PassageSelection> {
  return spreadPassages(prisma, exam.courseId, exam.documentIds, max, exam.seed);
}
