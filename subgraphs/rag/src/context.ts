import { createMembershipLoader } from '@lib/access.js';
import type { PrismaClient } from '@lib/db/client.js';
import type { SubgraphContext } from '@lib/subgraph-server.js';
import { createCourseLoaders, type CourseContext } from './courses.js';
import { createDocumentLoaders, type DocumentDeps } from './documents.js';
import type { SearchContext, SearchDeps } from './search.js';

export interface RagContext extends SubgraphContext, CourseContext, SearchContext {}

/** Fresh loaders per request: batching within it, no cache across users. */
export function createContextFactory(prisma: PrismaClient, docs: DocumentDeps, search: SearchDeps) {
  return (base: SubgraphContext): RagContext => ({
    ...base,
    prisma,
    docs,
    search,
    membership: createMembershipLoader(prisma, base.identity.userId),
    ...createCourseLoaders(prisma),
    ...createDocumentLoaders(prisma),
  });
}
