import type { SupergraphManager } from '@apollo/gateway';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Logger } from '@lib/logger.js';

/**
 * Serves the supergraph composed ahead of time from a file and reloads it when
 * the file changes. The gateway swaps schemas between requests: in-flight
 * operations finish on the plan they started with. A file that does not load
 * leaves the current schema in place.
 */
export class FileSupergraphManager implements SupergraphManager {
  private current = '';

  constructor(
    private readonly path: string,
    private readonly pollMs: number,
    private readonly log: Logger,
  ) {}

  async initialize({ update }: Parameters<SupergraphManager['initialize']>[0]) {
    this.current = readFileSync(this.path, 'utf8');
    watchFile(this.path, { interval: this.pollMs, persistent: false }, () => {
      let next: string;
      try {
        next = readFileSync(this.path, 'utf8');
      } catch (err) {
        this.log.warn({ path: this.path, err }, 'supergraph file unreadable, keeping the current schema');
        return;
      }
      if (next === this.current || next.trim() === '') return;
      try {
        update(next);
        this.current = next;
        this.log.info({ path: this.path, bytes: next.length }, 'supergraph reloaded');
      } catch (err) {
        this.log.error({ path: this.path, err }, 'supergraph update rejected, keeping the current schema');
      }
    });
    return {
      supergraphSdl: this.current,
      cleanup: async () => unwatchFile(this.path),
    };
  }
}
