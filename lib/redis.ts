import type { RedisOptions } from 'ioredis';

/** ioredis options from a redis:// URL, in the form BullMQ wants (it makes its own connections). */
export function redisOptionsFromUrl(url: string, extra: RedisOptions = {}): RedisOptions {
  const u = new URL(url);
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`REDIS_URL must be redis:// or rediss://, got ${u.protocol}`);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    ...extra,
  };
}

/** The same, typed for BullMQ (its own RedisOptions type is a looser copy of ioredis's). */
export function bullConnection(url: string): import('bullmq').ConnectionOptions {
  return redisOptionsFromUrl(url, { maxRetriesPerRequest: null }) as import('bullmq').ConnectionOptions;
}
