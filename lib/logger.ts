import { pino, type Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  service: string;
  level: string;
  format: 'json' | 'pretty';
}

/**
 * Structured logger: attributes first, constant message second.
 * `log.info({ courseId }, 'course created')`. JSON unless `pretty` is asked for.
 *
 * JSON goes to stdout asynchronously: pino's default destination writes synchronously, and when
 * the reader of stdout (a pipe to a log collector, the test stack) falls behind and the pipe is
 * full, each write sleeps 100 ms with the whole event loop blocked. Asynchronous writes queue
 * lines while one is in flight and retry a full pipe on a timer; what is queued is flushed
 * synchronously on exit (pino registers that itself).
 */
export function createLogger({ service, level, format }: LoggerOptions): Logger {
  const options = {
    level,
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', 'token', '*.token', 'assertion'],
      censor: '[redacted]',
    },
    ...(format === 'pretty'
      ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } }
      : {}),
  };
  return format === 'pretty' ? pino(options) : pino(options, pino.destination({ dest: 1, sync: false }));
}
