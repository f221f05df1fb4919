// The Dockerfile rules `make lint` checks (test/image/dockerfile.ts), and the parsing the engine-less image
// build relies on.
import fs from 'node:fs';
import {
  dockerfileProblems,
  imageEnv,
  imageNodeArgs,
  instructions,
  parseDockerfile,
} from '../../image/dockerfile.js';
import { dockerignore } from '../../image/engineless.js';

const GOOD = `ARG BASE=node:24-bookworm-slim
FROM \${BASE} AS build
RUN apt-get update && apt-get install -y --no-install-recommends make \\
    && rm -rf /var/lib/apt/lists/*
RUN npm ci
FROM node:24-bookworm-slim
COPY --from=build /src/dist ./dist
USER 65532:65532
ENTRYPOINT ["node", "/app/main.js"]
`;

const problems = (text: string) => dockerfileProblems(parseDockerfile(text));

describe('Dockerfile rules', () => {
  it('accepts the repository Dockerfile and a minimal good one', () => {
    expect(problems(fs.readFileSync(new URL('../../../Dockerfile', import.meta.url), 'utf8'))).toEqual([]);
    expect(problems(GOOD)).toEqual([]);
  });

  it('joins continuation lines, substitutes global ARGs and names stages', () => {
    const df = parseDockerfile(GOOD);
    expect(df.stages.map((s) => [s.name, s.base, s.line])).toEqual([
      ['build', 'node:24-bookworm-slim', 2],
      ['1', 'node:24-bookworm-slim', 6],
    ]);
    expect(instructions(GOOD)[2]).toEqual({
      op: 'RUN',
      args: 'apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*',
      line: 3,
    });
  });

  it.each([
    ['FROM node AS build', 'base image node has no tag'],
    ['FROM node:latest AS build', 'uses :latest'],
    ['FROM node:lts AS build', 'tag :lts names no version'],
  ])('refuses an unpinned base: %s', (from, message) => {
    expect(problems(GOOD.replace('FROM ${BASE} AS build', from)).join('\n')).toContain(message);
  });

  it('accepts a digest-pinned base', () => {
    expect(problems(GOOD.replace('FROM ${BASE}', `FROM node@sha256:${'a'.repeat(64)}`))).toEqual([]);
  });

  it('refuses npm install, a root or missing USER, shell-form ENTRYPOINT and apt-get without cleanup', () => {
    expect(problems(GOOD.replace('npm ci', 'npm install'))).toEqual([
      'Dockerfile:5: install npm packages with `npm ci` (or `make deps`), not npm install',
      'Dockerfile: no stage installs the locked packages (`npm ci` or `make deps`)',
    ]);
    expect(problems(GOOD.replace('USER 65532:65532', 'USER root'))).toEqual([
      'Dockerfile:8: the final stage must end with a non-root USER (e.g. 65532:65532)',
    ]);
    expect(problems(GOOD.replace('USER 65532:65532\n', ''))).toHaveLength(1);
    expect(problems(GOOD.replace('["node", "/app/main.js"]', 'node /app/main.js'))).toEqual([
      'Dockerfile:9: ENTRYPOINT in exec form (["node", …]) so signals reach node',
    ]);
    expect(problems(GOOD.replace(' --no-install-recommends', '').replace(/\\\n.*lists\/\*/, ''))).toEqual([
      'Dockerfile:3: apt-get install needs --no-install-recommends',
      'Dockerfile:3: remove /var/lib/apt/lists/*',
    ]);
  });

  it('reads .dockerignore the way the engine-less build copies the context', () => {
    const ignored = dockerignore(new URL('../../..', import.meta.url).pathname);
    expect(['node_modules', 'node_modules/x/y.js', '.git/HEAD', 'dist/a.js'].filter(ignored)).toHaveLength(4);
    expect(['operator/cli/main.ts', 'test/unit/x.ts', 'distx'].filter(ignored)).toEqual([]);
  });

  it('reads the environment the final stage sets (what the bench runs the roles with), without build ARGs', () => {
    const df = parseDockerfile(`FROM node:24 AS build
ENV BUILD_ONLY=1
FROM node:24-bookworm-slim
ARG GIT_SHA=unknown
ENV NODE_ENV=production GIT_SHA=\${GIT_SHA} NODE_OPTIONS="--a --b"
ENV LEGACY value with spaces
`);
    expect(imageEnv(df)).toEqual({
      NODE_ENV: 'production',
      NODE_OPTIONS: '--a --b',
      LEGACY: 'value with spaces',
    });
    const ours = imageEnv(
      parseDockerfile(fs.readFileSync(new URL('../../../Dockerfile', import.meta.url), 'utf8')),
    );
    expect(ours).toMatchObject({ NODE_OPTIONS: '--max-semi-space-size=1', MALLOC_ARENA_MAX: '2' });
  });

  it("reads the node flags of the final stage's ENTRYPOINT, which the bench starts both roles with", () => {
    const flags = (entrypoint: string) =>
      imageNodeArgs(parseDockerfile(`FROM a AS build\nENTRYPOINT ["x"]\nFROM b\nENTRYPOINT ${entrypoint}\n`));
    expect(flags('["node", "--no-opt", "--no-maglev", "/app/main.mjs", "start"]')).toEqual([
      '--no-opt',
      '--no-maglev',
    ]);
    expect(flags('["node", "/app/main.mjs"]')).toEqual([]);
    expect(flags('["tini", "--", "node", "/app/main.mjs"]')).toEqual([]);
    expect(flags('node --no-opt /app/main.mjs')).toEqual([]);
    const ours = imageNodeArgs(
      parseDockerfile(fs.readFileSync(new URL('../../../Dockerfile', import.meta.url), 'utf8')),
    );
    expect(ours).toEqual(['--no-opt', '--no-maglev']);
  });
});
