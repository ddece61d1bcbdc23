import pg from 'pg';
import { testInfra } from './infra.js';
import type { TestStack } from './stack.js';

export const TASK_FIELDS =
  'id status progress message attempts error { code message } document { id status chunkCount pages error { code } }';

export interface TaskView {
  id: string;
  status: string;
  progress: number;
  message: string | null;
  attempts: number;
  error: { code: string; message: string } | null;
  document: { id: string; status: string; chunkCount: number; pages: number | null; error: { code: string } | null } | null;
}

/** POSTs a file to the router's /uploads like a browser form would. */
export async function upload(stack: TestStack, token: string, bytes: Buffer, filename: string) {
  const form = new FormData();
  form.append('file', new Blob([bytes]), filename);
  const res = await fetch(stack.routerUrl.replace('/graphql', '/uploads'), {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    body: form,
  });
  return {
    status: res.status,
    body: (await res.json()) as { uploadId?: string; format?: string; errors?: { extensions?: { code?: string } }[] },
  };
}

export async function createCourse(stack: TestStack, token: string, title = 'Course') {
  const res = await stack.gql<{ createCourse: { id: string } }>(
    'mutation($t: String!) { createCourse(input: { title: $t }) { id } }',
    { t: title },
    { token },
  );
  return res.body.data!.createCourse.id;
}

export async function ingest(stack: TestStack, token: string, input: Record<string, unknown>) {
  const res = await stack.gql<{ ingestDocument: TaskView }>(
    `mutation($i: IngestDocumentInput!) { ingestDocument(input: $i) { ${TASK_FIELDS} } }`,
    { i: input },
    { token },
  );
  if (res.body.errors) throw new Error(JSON.stringify(res.body.errors));
  return res.body.data!.ingestDocument;
}

export async function getTask(stack: TestStack, token: string, id: string) {
  const res = await stack.gql<{ task: TaskView }>(`query($id: ID!) { task(id: $id) { ${TASK_FIELDS} } }`, { id }, { token });
  return res.body.data!.task;
}

/** Polls until the task reaches a final status. */
export async function waitForTask(stack: TestStack, token: string, id: string, timeoutMs = 60_000): Promise<TaskView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const task = await getTask(stack, token, id);
    if (['COMPLETED', 'FAILED', 'CANCELLED'].includes(task.status)) return task;
    if (Date.now() > deadline) throw new Error(`task ${id} still ${task.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The document's file in the blob store, read straight from PostgreSQL. */
export async function blobKeyOf(documentId: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: testInfra().DIRECT_DATABASE_URL });
  await client.connect();
  try {
    return (await client.query<{ blobKey: string }>('SELECT "blobKey" FROM "Document" WHERE id = $1', [documentId])).rows[0]?.blobKey;
  } finally {
    await client.end();
  }
}

/** Reads stored chunks straight from PostgreSQL: what later answers will cite. */
export async function chunksOf(documentId: string) {
  const client = new pg.Client({ connectionString: testInfra().DIRECT_DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string; position: number; text: string; pageStart: number; pageEnd: number }>(
      'SELECT id, position, text, "pageStart", "pageEnd" FROM "Chunk" WHERE "documentId" = $1 ORDER BY position',
      [documentId],
    );
    return rows;
  } finally {
    await client.end();
  }
}
