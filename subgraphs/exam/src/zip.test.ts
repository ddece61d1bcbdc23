import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { unzipFiles, zipFiles } from './zip.js';

const FILES = [
  { path: 'imsmanifest.xml', content: '<?xml version="1.0"?>\n<manifest>é “quoted”</manifest>\n' },
  { path: 'items/Q01.xml', content: 'x'.repeat(5000) },
  { path: 'empty.txt', content: '' },
];

describe('zipFiles', () => {
  it('writes a zip that reads back to the same files, the same bytes every time', () => {
    const zip = zipFiles(FILES);
    expect(zip.subarray(0, 4)).toEqual(Buffer.from([0x50, 0x4b, 0x03, 0x04]));
    expect(unzipFiles(zip).map((e) => ({ path: e.path, content: e.content.toString('utf8') }))).toEqual(FILES);
    expect(zipFiles(FILES).equals(zip)).toBe(true);
    // Deflated: the repetitive item is much smaller inside.
    expect(zip.length).toBeLessThan(1500);
  });

  const unzip = spawnSync('unzip', ['-v']).status === 0;
  if (!unzip) console.warn('skipped: the unzip program is absent');
  (unzip ? it : it.skip)('is read by Info-ZIP unzip, which checks every CRC', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zip-test-'));
    try {
      writeFileSync(join(dir, 'package.zip'), zipFiles(FILES));
      const out = execFileSync('unzip', ['-t', join(dir, 'package.zip')], { encoding: 'utf8' });
      expect(out).toMatch(/No errors detected/);
      for (const f of FILES) expect(out).toContain(f.path);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
