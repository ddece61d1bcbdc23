import DataLoader from 'dataloader';
import { assertUuid, requireCourseTeacher, type AccessContext } from '@lib/access.js';
import { forbidden, notFound } from '@lib/errors.js';
import type { PrismaClient, Task } from '@lib/db/client.js';

export interface TaskContext extends AccessContext {
  prisma: PrismaClient;
  tasks: DataLoader<string, Task | null>;
}

export function createTaskLoader(prisma: PrismaClient) {
  return new DataLoader<string, Task | null>(async (ids) => {
    const rows = await prisma.task.findMany({ where: { id: { in: [...ids] } } });
    const byId = new Map(rows.map((t) => [t.id, t]));
    return ids.map((id) => byId.get(id) ?? null);
  });
}

/** The owner, the course's teachers and admins see a task; nobody else learns it exists. */
export async function canSeeTask(ctx: AccessContext, task: Pick<Task, 'ownerId' | 'courseId'>): Promise<boolean> {
  if (ctx.identity.role === 'ADMIN' || task.ownerId === ctx.identity.userId) return true;
  try {
    await requireCourseTeacher(ctx, task.courseId);
    return true;
  } catch {
    return false;
  }
}

export async function getTask(ctx: TaskContext, rawId: string): Promise<Task> {
  const task = await ctx.tasks.load(assertUuid(rawId));
  if (!task) throw notFound('Task');
  if (!(await canSeeTask(ctx, task))) throw forbidden('You cannot see this task');
  return task;
}
