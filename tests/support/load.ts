import type { LoadClient } from '../../scripts/lib/load.js';
import { ingest, waitForTask } from './ingest.js';
import type { TestStack } from './stack.js';

const MATERIAL = [
  '# Photosynthesis\n\nPhotosynthesis turns light energy into chemical energy. Chlorophyll in the chloroplast absorbs light; water is split and oxygen released; carbon dioxide is fixed into sugar in the Calvin cycle.',
  '# The cell membrane\n\nThe membrane is a lipid bilayer with proteins. It lets water and small molecules pass and pumps ions with energy from ATP. Enzymes on its surface catalyse reactions.',
  '# Enzymes\n\nEnzymes are proteins that lower the activation energy of reactions. Temperature and pH change their shape; an enzyme that loses its shape stops working.',
];

/**
 * A course with some material and `clients` members (a tenth of them teachers), each with a token
 * and an address of its own: what `runLoad` needs.
 */
export async function prepareLoad(stack: TestStack, clients: number): Promise<{ courseId: string; clients: LoadClient[] }> {
  const owner = stack.user('load-owner');
  // An admin: setting up 500 members takes more requests than a teacher's per-minute budget.
  const ownerToken = await stack.token(owner, 'ADMIN');
  const made = await stack.gql<{ createCourse: { id: string } }>(
    'mutation { createCourse(input: { title: "Biology under load", description: "load" }) { id } }',
    {},
    { token: ownerToken },
  );
  const courseId = made.body.data!.createCourse.id;
  for (const [i, text] of MATERIAL.entries()) {
    const task = await ingest(stack, ownerToken, { courseId, title: `Material ${i + 1}`, text });
    const done = await waitForTask(stack, ownerToken, task.id, 120_000);
    if (done.status !== 'COMPLETED') throw new Error(`material ${i + 1} not ingested: ${JSON.stringify(done)}`);
  }
  const list: LoadClient[] = [];
  for (let i = 0; i < clients; i++) {
    const role = i % 10 === 0 ? 'TEACHER' : 'STUDENT';
    const sub = stack.user(`load-${i}`);
    list.push({ token: await stack.token(sub, role), role, ip: `10.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}` });
  }
  // Members, twenty at a time.
  for (let i = 0; i < list.length; i += 20) {
    await Promise.all(
      list.slice(i, i + 20).map(async (c, j) => {
        const res = await stack.gql(
          'mutation Add($c: ID!, $u: ID!, $r: CourseRole!) { addCourseMember(courseId: $c, userId: $u, role: $r) { role } }',
          { c: courseId, u: stack.user(`load-${i + j}`), r: c.role },
          { token: ownerToken },
        );
        if (res.body.errors) throw new Error(`member not added: ${JSON.stringify(res.body.errors)}`);
      }),
    );
  }
  return { courseId, clients: list };
}
