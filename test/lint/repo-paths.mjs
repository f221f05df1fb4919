// `make lint` check: tests, scripts and chart tests only read files inside the repository, so a plain
// `git clone` with nothing beside it runs them all. Every relative path (`../x`, `'..', 'x'`) is resolved
// from the directory it is resolved against — the repository root when it follows a root variable
// (`$root/..`, `repoRoot, '..'`, `$(CURDIR)/..`), the file's own directory otherwise (also from dist/ for
// the files `make build` compiles) — and must stay inside the root. Absolute paths into the machine that
// wrote the test (`/work/...`) are refused too. A line that must name an outside path on purpose (e.g. a
// path-traversal test input) carries the comment `repo-paths: allow`.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const SCANNED = [/^test\//, /^bench\//, /^scripts\//, /^charts\/[^/]+\/tests\//, /^charts\/[^/]+\/ci\//];
const TOP_LEVEL = new Set(['Makefile', 'Dockerfile', 'jest.config.js', 'package.json', 'eslint.config.js']);
const SKIPPED = [/^test\/lint\/repo-paths\.mjs$/, /^test\/fixtures\//, /\/__snapshot__\//, /\.md$/];
const TEXT = /\.(ts|js|mjs|cjs|sh|ya?ml|json|env|toml)$|(^|\/)(Makefile|Dockerfile)$/;
// Files `make build` compiles run from dist/<same path>: one level deeper than their source.
const COMPILED = (file) =>
  /^(operator|test|bench)\/.*\.ts$/.test(file) &&
  !file.endsWith('.test.ts') &&
  !/^test\/k8s\/global-/.test(file);

const ROOT_BEFORE = /(?:\b\w*root\w*|\bROOT\w*|\bCURDIR\b|\bREPO\w*)[)}'"`\s]*[,/]\s*['"`]?$/i;
const SLASH_RUN = /(?<![\w.])\.\.(?:\/\.\.)*(?=\/|['"`\s)]|$)/g;
const ARG_RUN = /(['"])\.\.\1(?:\s*,\s*(['"])\.\.\2)*/g;
const OUTSIDE_ABSOLUTE = /(?<![\w.])\/work\/|\bshared\/examples\b/;

/** Why this line names a path outside the repository, or '' when it does not. */
function outsideReason(line, allowed, dir) {
  if (OUTSIDE_ABSOLUTE.test(line)) return 'names a folder outside the repository';
  for (const [pattern, count] of [
    [SLASH_RUN, (m) => m.split('/').length],
    [ARG_RUN, (m) => m.split(',').length],
  ]) {
    for (const match of line.matchAll(pattern)) {
      if (ROOT_BEFORE.test(line.slice(0, match.index)))
        return `'${match[0]}' from the repository root leaves it`;
      if (count(match[0]) > allowed) return `'${match[0]}' from ${dir}/ leaves the repository`;
    }
  }
  return '';
}

/** Relative-path problems in one file's text, as "file:line: message" strings. */
function checkFile(file, text) {
  const problems = [];
  const depth = path.posix.dirname(file) === '.' ? 0 : path.posix.dirname(file).split('/').length;
  const allowed = depth + (COMPILED(file) ? 1 : 0);
  text.split('\n').forEach((line, index) => {
    const reason =
      !line.includes('repo-paths: allow') && outsideReason(line, allowed, path.posix.dirname(file));
    if (reason) problems.push(`${file}:${index + 1}: ${reason}: ${line.trim()}`);
  });
  return problems;
}

function scannedFiles(root) {
  const listed = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
    cwd: root,
    encoding: 'utf8',
  });
  return listed
    .split('\n')
    .filter((f) => f && TEXT.test(f) && (TOP_LEVEL.has(f) || SCANNED.some((re) => re.test(f))))
    .filter((f) => !SKIPPED.some((re) => re.test(f)) && fs.existsSync(path.join(root, f)));
}

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const files = scannedFiles(root);
const problems = files.flatMap((f) => checkFile(f, fs.readFileSync(path.join(root, f), 'utf8')));
if (problems.length > 0) {
  console.error(problems.join('\n'));
  console.error(
    `repo-paths: ${problems.length} path(s) leave the repository; copy what the test needs into test/fixtures/`,
  );
  process.exit(1);
}
console.log(`repo-paths: ${files.length} files, every relative path stays inside the repository`);
