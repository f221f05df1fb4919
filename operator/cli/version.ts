import fs from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The package version, read from package.json next to dist/ or the source tree. */
export function packageVersion(): string {
  for (const candidate of ['../../package.json', '../../../package.json']) {
    try {
      return (require(candidate) as { version: string }).version;
    } catch {
      /* try the next layout */
    }
  }
  return '0.0.0';
}

/** The git commit: GIT_SHA (set by the image build), else .git/HEAD of a checkout, else 'unknown'. */
export function gitSha(): string {
  if (process.env.GIT_SHA) return process.env.GIT_SHA.slice(0, 12);
  try {
    const root = new URL('../../', import.meta.url);
    for (const dir of [root, new URL('../', root)]) {
      const head = new URL('.git/HEAD', dir);
      if (!fs.existsSync(head)) continue;
      const ref = fs.readFileSync(head, 'utf8').trim();
      if (!ref.startsWith('ref: ')) return ref.slice(0, 12);
      const refFile = new URL(`.git/${ref.slice(5)}`, dir);
      if (fs.existsSync(refFile)) return fs.readFileSync(refFile, 'utf8').trim().slice(0, 12);
      const packed = new URL('.git/packed-refs', dir);
      if (fs.existsSync(packed)) {
        const line = fs
          .readFileSync(packed, 'utf8')
          .split('\n')
          .find((l) => l.endsWith(` ${ref.slice(5)}`));
        if (line) return line.slice(0, 12);
      }
    }
  } catch {
    /* fall through */
  }
  return 'unknown';
}

export function versionLine(): string {
  return `teleport-mattermost v${packageVersion()} git:${gitSha()} node${process.versions.node}`;
}
