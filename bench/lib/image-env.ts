// What the image sets for both roles (the Dockerfile's final ENV: V8 and glibc malloc settings, and the node
// flags of its ENTRYPOINT), read from the Dockerfile itself so the bench runs the relay and the operator as a
// container would, without drift.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { imageEnv, imageNodeArgs, parseDockerfile } from '../../test/image/dockerfile.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// dist/bench/lib → the repository (BENCH_ROOT when built elsewhere).
const root = process.env.BENCH_ROOT ?? path.resolve(here, '../../..');

const dockerfile = parseDockerfile(readFileSync(path.join(root, 'Dockerfile'), 'utf8'));
export const IMAGE_ENV: Readonly<Record<string, string>> = imageEnv(dockerfile);
/** The node flags before the entry point, e.g. --no-opt --no-maglev. */
export const IMAGE_NODE_ARGS: readonly string[] = imageNodeArgs(dockerfile);
export const IMAGE_NODE_OPTIONS = IMAGE_ENV.NODE_OPTIONS ?? '';
