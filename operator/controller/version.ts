// The operator's own version (from package.json), for labels and the default watcher image.
import { readFileSync } from 'node:fs';

let cached: string | undefined;

export function packageVersion(): string {
  if (cached) return cached;
  // Source (operator/controller) and build (dist/operator/controller) layouts.
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'teleport-plugin-mattermost' && pkg.version) return (cached = pkg.version);
    } catch {
      // try the next layout
    }
  }
  return (cached = '0.0.0');
}
