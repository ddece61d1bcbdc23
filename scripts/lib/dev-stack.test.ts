import { describe, expect, it } from '@jest/globals';
import { devStackOptions } from './dev-stack.js';
import { serviceEnvironment, SUBGRAPHS } from './stack.js';

const infra = { DATABASE_URL: 'postgresql://a@h:1/d', DIRECT_DATABASE_URL: 'postgresql://a@h:2/d', REDIS_URL: 'redis://h:3' };
const keys = {
  user: { privateJwk: { kty: 'RSA' }, publicJwk: { kty: 'RSA' } },
  internal: { privateJwk: { kty: 'OKP' }, publicJwk: { kty: 'OKP' } },
} as never;

const userSettings = {
  PATH: '/usr/bin',
  EMBEDDINGS_URL: 'http://localhost:11434/v1',
  EMBEDDINGS_MODEL: 'bge-m3',
  LLM_URL: 'http://localhost:11434/v1',
  LLM_MODEL: 'llama3.1',
  VECTOR_STORE: 'qdrant',
  QDRANT_URL: 'http://localhost:6333',
  RATE_LIMIT_STUDENT: '5',
};

/** The environment a service of the stack gets, as startService builds it. */
function envOf(service: string, options: ReturnType<typeof devStackOptions>, parent: NodeJS.ProcessEnv) {
  const own = { ...options.env, ...options.perService?.[service.startsWith('worker') ? 'worker' : service] };
  return serviceEnvironment(parent, own, options.inheritSettings);
}

describe('npm run dev', () => {
  const options = devStackOptions({ infra, keys, devToken: 'tok', routerPort: 4000, parentEnv: userSettings });

  it.each([...SUBGRAPHS, 'worker-1', 'router'])('passes the settings the user exported to %s', (service) => {
    const env = envOf(service, options, userSettings);
    for (const [name, value] of Object.entries(userSettings)) expect(env[name]).toBe(value);
    // What the stack wires itself always wins over the parent's.
    expect(env['DATABASE_URL']).toBe(infra.DATABASE_URL);
  });

  it('binds the router to loopback unless DEV_ROUTER_HOST says otherwise', () => {
    expect(options.perService?.['router']?.['HOST']).toBe('127.0.0.1');
    const exposed = devStackOptions({ infra, keys, devToken: 't', routerPort: 4000, parentEnv: { DEV_ROUTER_HOST: '0.0.0.0' } });
    expect(exposed.perService?.['router']?.['HOST']).toBe('0.0.0.0');
  });
});

describe('test and benchmark stacks', () => {
  it('drop the project settings a developer exported, keeping the machine ones', () => {
    const env = serviceEnvironment(userSettings, { REDIS_URL: 'redis://test' });
    expect(env['PATH']).toBe('/usr/bin');
    expect(env['REDIS_URL']).toBe('redis://test');
    for (const name of ['EMBEDDINGS_URL', 'LLM_URL', 'VECTOR_STORE', 'QDRANT_URL', 'RATE_LIMIT_STUDENT']) expect(env[name]).toBeUndefined();
  });
});
