import type { Message } from '../db/client.js';
import type { Citation } from '../tutor/types.js';

/**
 * How a Message row shows its computed GraphQL fields: the chat subgraph's resolvers, and the
 * router when it shapes a final answer from the row the worker sent with its `done` event
 * (router/src/answer-stream.ts) instead of reading it back through the gateway. One definition,
 * so both give the same answer.
 */
export type MessageRow = Pick<Message, 'citations' | 'promptTokens' | 'completionTokens' | 'errorCode' | 'errorMessage'>;

export const messageCitations = (m: Pick<MessageRow, 'citations'>) =>
  (m.citations as unknown as Citation[]).map((c) => ({ ...c, document: { __typename: 'Document', id: c.documentId } }));

export const messageUsage = (m: Pick<MessageRow, 'promptTokens' | 'completionTokens'>) =>
  m.promptTokens === null && m.completionTokens === null
    ? null
    : { promptTokens: m.promptTokens ?? 0, completionTokens: m.completionTokens ?? 0 };

export const messageError = (m: Pick<MessageRow, 'errorCode' | 'errorMessage'>) =>
  m.errorCode ? { code: m.errorCode, message: m.errorMessage ?? '' } : null;

/**
 * The fields of Message (and of the types under it) that those and the row itself answer: a final
 * answer whose subscriber asked for these only can be shaped from the row. Anything else (its
 * conversation, the reader's rating, a document's title, fields other subgraphs add) is read
 * through the gateway.
 */
export const ROW_FIELDS: Readonly<Record<string, ReadonlySet<string>>> = {
  Message: new Set([
    'id',
    'role',
    'content',
    'status',
    'mode',
    'citations',
    'grounded',
    'engine',
    'model',
    'cached',
    'usage',
    'error',
    'createdAt',
  ]),
  Citation: new Set(['index', 'chunkId', 'document', 'pageStart', 'pageEnd', 'quote']),
  Document: new Set(['id']),
  TokenUsage: new Set(['promptTokens', 'completionTokens']),
  MessageError: new Set(['code', 'message']),
};
