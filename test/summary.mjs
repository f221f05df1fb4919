// Prints the closing lines of `make test`: one per step or tier, then "tests: N passed, N failed" summing
// them all, and exits 1 if anything failed. Usage: summary.mjs <results dir> <tier>…
// Per tier the results dir holds <tier>.rc (its exit code) and, depending on the tier, <tier>.json
// (jest's --json output) and/or <tier>.log (helm-unittest's "Tests:" lines, where errored tests count as
// failed, and our scripts' "Checks: N passed, N failed" lines). A tier that exited non-zero without reporting a failed test
// (a crash, a lint error, a missing tool) counts as one failure, so nothing fails silently.
import fs from 'node:fs';
import path from 'node:path';

/** Passed and failed counts from one tier's result files. */
export function tierCounts(dir, tier) {
  const counts = { passed: 0, failed: 0, notes: [] };
  const json = path.join(dir, `${tier}.json`);
  if (fs.existsSync(json)) {
    const result = JSON.parse(fs.readFileSync(json, 'utf8'));
    counts.passed += result.numPassedTests;
    counts.failed += result.numFailedTests + (result.numRuntimeErrorTestSuites ?? 0);
  }
  const log = path.join(dir, `${tier}.log`);
  if (fs.existsSync(log)) {
    const text = fs.readFileSync(log, 'utf8');
    // e.g. "Tests:       2 failed, 2 errored, 75 passed, 77 total" (helm-unittest), "Checks: 12 passed, 1 failed".
    for (const [line] of text.matchAll(/^(?:Tests|Checks):.*$/gm)) {
      const count = (word) => Number(new RegExp(`(\\d+) ${word}`).exec(line)?.[1] ?? 0);
      counts.failed += count('failed') + count('errored');
      counts.passed += count('passed');
    }
  }
  const rcFile = path.join(dir, `${tier}.rc`);
  const rc = fs.existsSync(rcFile) ? Number(fs.readFileSync(rcFile, 'utf8').trim()) : undefined;
  if (rc === undefined) {
    counts.failed += 1;
    counts.notes.push('did not run');
  } else if (rc !== 0 && counts.failed === 0) {
    counts.failed += 1;
    counts.notes.push(`exited ${rc} without a failed test: see its output above`);
  }
  return counts;
}

function main([dir, ...tiers]) {
  let passed = 0;
  let failed = 0;
  for (const tier of tiers) {
    const counts = tierCounts(dir, tier);
    passed += counts.passed;
    failed += counts.failed;
    const notes = counts.notes.length > 0 ? ` (${counts.notes.join('; ')})` : '';
    console.log(`  ${tier}: ${counts.passed} passed, ${counts.failed} failed${notes}`);
  }
  console.log(`tests: ${passed} passed, ${failed} failed`);
  process.exit(failed > 0 ? 1 : 0);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  main(process.argv.slice(2));
}
