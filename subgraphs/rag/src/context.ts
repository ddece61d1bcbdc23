import { createMembershipLoader } from '@lib/access.js';
import type { PrismaClient } from '@lib/db/client.js';
import type { FileLinkTarget } from '@lib/file-links.js';
import type { SubgraphContext } from '@lib/subgraph-server.js';
import { createCourseLoaders, type CourseContext } from './courses.js';
import { createDocumentLoaders, type DocumentDeps } from './documents.js';
import type { SearchContext, SearchDeps } from './search.js';

/** Document.fileUrl: signs an expiring link to a document's file; absent when links are not configured. */
export type FileLinkSigner = (target: FileLinkTarget) => string;

export interface RagContext extends SubgraphContext, CourseContext, SearchContext {
  fileLinks?: FileLinkSigner | undefined;
}

/** Fresh loaders per request: batching within it, no cache across users. */
export function createContextFactory(prisma: PrismaClient, docs: DocumentDeps, search: SearchDeps, fileLinks?: FileLinkSigner) {
  return (base: SubgraphContext): RagContext => ({
    ...base,
    fileLinks,
    prisma,
    docs,
    search,
    membership: createMembershipLoader(prisma, base.identity.userId),
    ...createCourseLoaders(prisma),
    ...createDocumentLoaders(prisma),
  });
}
