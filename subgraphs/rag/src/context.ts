import { createMembershipLoader } from '@lib/access.js';
import type { PrismaClient } from '@lib/db/client.js';
import type { SubgraphContext } from '@lib/subgraph-server.js';
import { createCourseLoaders, type CourseContext } from './courses.js';

export interface RagContext extends SubgraphContext, CourseContext {}

/** Fresh loaders per request: batching within it, no cache across users. */
export function createContextFactory(prisma: PrismaClient) {
  return (base: SubgraphContext): RagContext => ({
    ...base,
    prisma,
    membership: createMembershipLoader(prisma, base.identity.userId),
    ...createCourseLoaders(prisma),
  });
}
