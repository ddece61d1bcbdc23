import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

export interface Subscription<T> {
  /** Every `next` payload so far. */
  messages: { data?: T; errors?: { message: string; extensions?: Record<string, unknown> }[] }[];
  /** Resolves when the server completes the subscription; rejects on an error message or a closed socket. */
  done: Promise<void>;
  /** Resolves once a message satisfies the predicate (checked on every message). */
  until(predicate: (data: T) => boolean, timeoutMs?: number): Promise<T>;
  client: Client;
  /** Completes the subscription (a `complete` message to the server); the lazy client then closes its socket. */
  unsubscribe(): void;
  dispose(): Promise<void>;
}

/** A graphql-ws client on the router's /graphql URL, authenticated in connection_init. */
export function subscribe<T = Record<string, unknown>>(
  httpUrl: string,
  token: string | undefined,
  query: string,
  variables: Record<string, unknown> = {},
): Subscription<T> {
  const client = createClient({
    url: httpUrl.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    lazy: true,
  });
  const messages: Subscription<T>['messages'] = [];
  const waiters: { predicate: (data: T) => boolean; resolve: (d: T) => void }[] = [];
  let unsubscribe = () => {};
  const done = new Promise<void>((resolve, reject) => {
    unsubscribe = client.subscribe<T>(
      { query, variables },
      {
        next: (value) => {
          messages.push(value as Subscription<T>['messages'][number]);
          for (const w of [...waiters]) {
            if (value.data && w.predicate(value.data as T)) {
              waiters.splice(waiters.indexOf(w), 1);
              w.resolve(value.data as T);
            }
          }
        },
        error: (err) => reject(err),
        complete: () => resolve(),
      },
    );
  });
  done.catch(() => {});
  return {
    messages,
    done,
    client,
    until(predicate, timeoutMs = 30_000) {
      const seen = messages.find((m) => m.data && predicate(m.data));
      if (seen?.data) return Promise.resolve(seen.data);
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no matching message in ${timeoutMs} ms; got ${JSON.stringify(messages)}`)),
          timeoutMs,
        );
        waiters.push({ predicate, resolve: (d) => (clearTimeout(timer), resolve(d)) });
        done.catch((err) => (clearTimeout(timer), reject(err)));
      });
    },
    unsubscribe: () => unsubscribe(),
    dispose: () => client.dispose() as Promise<void>,
  };
}
