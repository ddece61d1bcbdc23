import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/index.js';
import type { GraphQLResolveInfo } from 'graphql';
import type { CourseRole } from '@lib/access.js';
import type { Course, CourseMember } from '@lib/db/client.js';
import { DateTime } from '@lib/scalars.js';
import type { RagContext } from './context.js';
import { addCourseMember, createCourse, getCourse, myCourses, removeCourseMember, visibleMembers } from './courses.js';
import {
  courseDocuments,
  deleteDocument,
  getDocument,
  ingestDocument,
  MAX_TEXT_CHARS,
  taskDocument,
  type IngestInput,
} from './documents.js';
import type { Document } from '@lib/db/client.js';
import { MAX_LIMIT, MAX_QUERY_CHARS, reindexCourse, searchPassages, type Passage } from './search.js';

/** Whether the field being resolved selects `name` directly (a fragment spread or inline fragment is not looked into). */
const selectsField = (info: GraphQLResolveInfo, name: string) =>
  info.fieldNodes.some((node) => node.selectionSet?.selections.some((s) => s.kind === 'Field' && s.name.value === name));

export const resolvers: GraphQLResolverMap<RagContext> = {
  DateTime,
  Query: {
    course: (_: unknown, { id }: { id: string }, ctx: RagContext) => getCourse(ctx, id),
    myCourses: (_: unknown, __: unknown, ctx: RagContext) => myCourses(ctx),
    document: (_: unknown, { id }: { id: string }, ctx: RagContext) => getDocument(ctx, id),
    search: (_: unknown, args: Parameters<typeof searchPassages>[1], ctx: RagContext, info: GraphQLResolveInfo) =>
      searchPassages(ctx, args, selectsField(info, 'document')),
    limits: () => ({
      titleMaxChars: 200,
      pastedTextMaxChars: MAX_TEXT_CHARS,
      searchQueryMaxChars: MAX_QUERY_CHARS,
      searchLimitMax: MAX_LIMIT,
    }),
  },
  Mutation: {
    createCourse: (_: unknown, { input }: { input: { title: string; description?: string | null } }, ctx: RagContext) =>
      createCourse(ctx.prisma, ctx.identity, input),
    addCourseMember: (_: unknown, a: { courseId: string; userId: string; role: CourseRole }, ctx: RagContext) =>
      addCourseMember(ctx, a.courseId, a.userId, a.role),
    removeCourseMember: (_: unknown, a: { courseId: string; userId: string }, ctx: RagContext) =>
      removeCourseMember(ctx, a.courseId, a.userId),
    ingestDocument: (_: unknown, { input }: { input: IngestInput }, ctx: RagContext) => ingestDocument(ctx, input),
    deleteDocument: (_: unknown, { id }: { id: string }, ctx: RagContext) => deleteDocument(ctx, id),
    reindexCourse: (_: unknown, { courseId }: { courseId: string }, ctx: RagContext) => reindexCourse(ctx, courseId),
  },
  Course: {
    __resolveReference: (ref: { id: string }, ctx: RagContext) => getCourse(ctx, ref.id),
    myRole: (course: Course, _: unknown, ctx: RagContext) => ctx.membership.load(course.id),
    members: (course: Course, _: unknown, ctx: RagContext) => visibleMembers(ctx, course.id),
    documents: (course: Course, _: unknown, ctx: RagContext) => courseDocuments(ctx, course.id),
  },
  Document: {
    __resolveReference: (ref: { id: string }, ctx: RagContext) => getDocument(ctx, ref.id),
    error: (d: Document) => (d.errorCode ? { code: d.errorCode, message: d.errorMessage ?? d.errorCode } : null),
    course: (d: Document, _: unknown, ctx: RagContext) => ctx.courses.load(d.courseId),
    task: (d: Document) => (d.taskId ? { __typename: 'Task', id: d.taskId } : null),
    fileUrl: (d: Document, _: unknown, ctx: RagContext) =>
      ctx.fileLinks?.({ documentId: d.id, blobKey: d.blobKey, format: d.format, filename: d.filename }) ?? null,
  },
  Passage: {
    document: (p: Passage, _: unknown, ctx: RagContext) => ctx.documents.load(p.documentId),
  },
  Task: {
    __resolveReference: (ref: { id: string }) => ({ id: ref.id }),
    document: (task: { id: string }, _: unknown, ctx: RagContext) => taskDocument(ctx, task.id),
  },
  CourseMember: {
    joinedAt: (m: CourseMember) => m.createdAt,
  },
};
