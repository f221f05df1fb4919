// The product's version, for `teleport-mattermost version`, the operator's labels and the default image.
import fs from 'node:fs';

// Source (operator/) and build (dist/operator/) layouts: the repository root is one or two levels up.
const ROOTS = [new URL('../', import.meta.url), new URL('../../', import.meta.url)];
let cachedVersion: string | undefined;

/** The version in package.json. */
export function packageVersion(): string {
  if (cachedVersion) return cachedVersion;
  // The bundle (dist/bundle, see the Makefile) has no package.json beside it: esbuild writes the version in.
  if (process.env.TPM_BUNDLED_VERSION) return (cachedVersion = process.env.TPM_BUNDLED_VERSION);
  for (const root of ROOTS) {
    try {
      const pkg = JSON.parse(fs.readFileSync(new URL('package.json', root), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'teleport-plugin-mattermost' && pkg.version) return (cachedVersion = pkg.version);
    } catch {
      // try the next layout
    }
  }
  return (cachedVersion = '0.0.0');
}

/** The git commit: GIT_SHA (set by the image build), else .git of a checkout, else 'unknown'. */
export function gitSha(): string {
  if (process.env.GIT_SHA) return process.env.GIT_SHA.slice(0, 12);
  for (const root of ROOTS) {
    try {
      const head = new URL('.git/HEAD', root);
      if (!fs.existsSync(head)) continue;
      const ref = fs.readFileSync(head, 'utf8').trim();
      if (!ref.startsWith('ref: ')) return ref.slice(0, 12);
      const name = ref.slice(5);
      const refFile = new URL(`.git/${name}`, root);
      if (fs.existsSync(refFile)) return fs.readFileSync(refFile, 'utf8').trim().slice(0, 12);
      const packed = new URL('.git/packed-refs', root);
      const line = fs.existsSync(packed)
        ? fs
            .readFileSync(packed, 'utf8')
            .split('\n')
            .find((l) => l.endsWith(` ${name}`))
        : undefined;
      if (line) return line.slice(0, 12);
    } catch {
      // not a checkout
    }
  }
  return 'unknown';
}

export function versionLine(): string {
  return `teleport-mattermost v${packageVersion()} git:${gitSha()} node${process.versions.node}`;
}
