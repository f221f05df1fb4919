// Prints one closing line for the whole `make test` run ("tests: N passed, N failed"), summing the jest
// tiers' JSON results and the helm-unittest log, so CI reports what ran.
import fs from 'node:fs';

let passed = 0;
let failed = 0;
for (const file of process.argv.slice(2)) {
  if (!fs.existsSync(file)) {
    console.error(`summary: ${file} is missing (that tier did not run)`);
    failed += 1;
    continue;
  }
  const text = fs.readFileSync(file, 'utf8');
  if (file.endsWith('.json')) {
    const result = JSON.parse(text);
    passed += result.numPassedTests;
    failed += result.numFailedTests + (result.numRuntimeErrorTestSuites ?? 0);
  } else {
    const m = /^Tests:\s+(?:(\d+) failed, )?(\d+) passed/m.exec(text);
    if (m) {
      failed += Number(m[1] ?? 0);
      passed += Number(m[2]);
    } else {
      console.error(`summary: no helm-unittest totals in ${file}`);
      failed += 1;
    }
  }
}
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
