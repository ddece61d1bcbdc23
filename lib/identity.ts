/** Who is asking, as established by the router and carried to subgraphs. */
export const Roles = ['STUDENT', 'TEACHER', 'ADMIN'] as const;
export type Role = (typeof Roles)[number];

export interface Identity {
  userId: string;
  role: Role;
}

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (Roles as readonly string[]).includes(value);
}

/** Header names the router sets on every subgraph request. Clients' own values are never forwarded. */
export const IdentityHeaders = {
  userId: 'x-user-id',
  role: 'x-user-role',
  requestId: 'x-request-id',
  assertion: 'x-internal-assertion',
} as const;
