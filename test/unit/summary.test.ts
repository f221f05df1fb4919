// `make test`'s closing line (test/summary.mjs): every tier counts, and a tier that crashed, or never ran,
// is a failure even when it reported no failed test.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('../summary.mjs', import.meta.url));

function summarize(files: Record<string, string>, tiers: string[]): { code: number | null; lines: string[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'summary-'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  const r = spawnSync(process.execPath, [script, dir, ...tiers], { encoding: 'utf8' });
  fs.rmSync(dir, { recursive: true, force: true });
  return { code: r.status, lines: r.stdout.trimEnd().split('\n') };
}

const jest = (passed: number, failed: number, crashed = 0) =>
  JSON.stringify({ numPassedTests: passed, numFailedTests: failed, numRuntimeErrorTestSuites: crashed });

describe('test summary', () => {
  it('sums jest results, helm-unittest totals and script checks into one closing line', () => {
    const r = summarize(
      {
        'unit.rc': '0',
        'unit.json': jest(10, 0),
        'chart.rc': '0',
        'chart.log':
          'Checks: 4 passed, 0 failed\nCharts:      1 passed, 1 total\nTests:       20 passed, 20 total\n',
      },
      ['unit', 'chart'],
    );
    expect(r.lines).toEqual([
      '  unit: 10 passed, 0 failed',
      '  chart: 24 passed, 0 failed',
      'tests: 34 passed, 0 failed',
    ]);
    expect(r.code).toBe(0);
  });

  it('keeps counting after a failed tier and fails at the end', () => {
    const r = summarize(
      {
        'unit.rc': '1',
        'unit.json': jest(8, 2),
        'chart.rc': '1',
        'chart.log': 'Checks: 3 passed, 1 failed\nTests:       1 failed, 2 errored, 17 passed, 20 total\n',
        'k8s.rc': '0',
        'k8s.json': jest(30, 0),
      },
      ['unit', 'chart', 'k8s'],
    );
    expect(r.lines.at(-1)).toBe('tests: 58 passed, 6 failed');
    expect(r.code).toBe(1);
  });

  it('counts a tier that exited non-zero without a failed test, one that never ran, and crashed suites', () => {
    const r = summarize({ 'lint.rc': '2', 'k8s.rc': '1', 'k8s.json': jest(0, 0, 1) }, [
      'lint',
      'k8s',
      'clone',
    ]);
    expect(r.lines).toEqual([
      '  lint: 0 passed, 1 failed (exited 2 without a failed test: see its output above)',
      '  k8s: 0 passed, 1 failed',
      '  clone: 0 passed, 1 failed (did not run)',
      'tests: 0 passed, 3 failed',
    ]);
    expect(r.code).toBe(1);
  });
});
