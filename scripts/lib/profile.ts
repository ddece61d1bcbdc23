import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A module to preload (`NODE_OPTIONS=--import=<it>`) that profiles the process's CPU and writes
 * <dir>/<script>-<pid>.cpuprofile: from start to exit (its graceful SIGTERM path), or with
 * `window: 'SIGUSR2'` from the first SIGUSR2 the process gets to the second (a bench's steady
 * state only). Node 20 refuses --cpu-prof in NODE_OPTIONS, hence the inspector. Returns the
 * module's path.
 */
export function profilerHook(dir: string, window: 'exit' | 'SIGUSR2' = 'exit'): string {
  mkdirSync(dir, { recursive: true });
  const hook = join(dir, `profile-hook-${window}.mjs`);
  const write = `if (!err) writeFileSync(${JSON.stringify(dir)} + '/' + process.argv[process.argv.length - 1].replace(/\\W+/g, '_') + '-' + process.pid + '.cpuprofile', JSON.stringify(res.profile));`;
  const body =
    window === 'exit'
      ? `session.post('Profiler.start');
process.on('exit', () => {
  session.post('Profiler.stop', (err, res) => {
    ${write}
  });
});
`
      : `let running = false;
process.on('SIGUSR2', () => {
  if (!running) return void session.post('Profiler.start', () => (running = true));
  running = false;
  session.post('Profiler.stop', (err, res) => {
    ${write}
  });
});
`;
  writeFileSync(
    hook,
    `import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
const session = new Session();
session.connect();
session.post('Profiler.enable');
session.post('Profiler.setSamplingInterval', { interval: 500 });
${body}`,
  );
  return hook;
}

/** The environment that makes a service preload the profiler (nothing without a directory). */
export function profileEnv(dir: string | undefined, window: 'exit' | 'SIGUSR2' = 'exit'): Record<string, string> {
  return dir ? { NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --import=${profilerHook(dir, window)}`.trim() } : {};
}
