import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A module to preload (`NODE_OPTIONS=--import=<it>`) that profiles the process's CPU and writes
 * <dir>/<script>-<pid>.cpuprofile when it exits (its graceful SIGTERM path). Node 20 refuses
 * --cpu-prof in NODE_OPTIONS, hence the inspector. Returns the module's path.
 */
export function profilerHook(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const hook = join(dir, 'profile-hook.mjs');
  writeFileSync(
    hook,
    `import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
const session = new Session();
session.connect();
session.post('Profiler.enable');
session.post('Profiler.setSamplingInterval', { interval: 500 });
session.post('Profiler.start');
process.on('exit', () => {
  session.post('Profiler.stop', (err, res) => {
    if (!err) writeFileSync(${JSON.stringify(dir)} + '/' + process.argv[process.argv.length - 1].replace(/\\W+/g, '_') + '-' + process.pid + '.cpuprofile', JSON.stringify(res.profile));
  });
});
`,
  );
  return hook;
}
