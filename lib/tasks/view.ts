import type { Task } from '../db/client.js';

/** Task.error: null unless the task failed with a code. */
export const taskError = (task: Pick<Task, 'errorCode' | 'errorMessage'>) =>
  task.errorCode ? { code: task.errorCode, message: task.errorMessage ?? task.errorCode } : null;

/**
 * A Task row as the GraphQL Task, for the subgraphs whose mutations start a task: they answer
 * its fields (@provides in their SDL) from the row they just wrote or found, so the router needs
 * no second fetch from the tasks subgraph. The tasks subgraph resolves the same fields the same way.
 */
export const taskView = (task: Task) => ({ ...task, __typename: 'Task' as const, error: taskError(task) });
