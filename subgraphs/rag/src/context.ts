import { createMembershipLoader } from '@lib/access.js';
import type { PrismaClient } from '@lib/db/client.js';
import type { SubgraphContext } from '@lib/subgraph-server.js';
import { createCourseLoaders, type CourseContext } from './courses.js';
import { createDocumentLoaders, type DocumentContext, type DocumentDeps } from './documents.js';

export interface RagContext extends SubgraphContext, CourseContext, DocumentContext {}

/** Fresh loaders per request: batching within it, no cache across users. */
export function createContextFactory(prisma: PrismaClient, docs: DocumentDeps) {
  return (base: SubgraphContext): RagContext => ({
    ...base,
    prisma,
    docs,
    membership: createMembershipLoader(prisma, base.identity.userId),
    ...createCourseLoaders(prisma),
    ...createDocumentLoaders(prisma),
  });
}
