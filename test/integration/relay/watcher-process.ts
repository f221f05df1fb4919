// The built watcher as a child process (`node dist/operator/cli/main.js start -c file.toml`, as the image
// runs it), for the process tests against the test servers and against the real Mattermost.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PluginConfig } from '../../../operator/config/types.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const entry = path.join(root, 'dist/operator/cli/main.js');

/** Throws (for a beforeAll) when the build the processes run is missing. */
export function requireBuiltWatcher(): void {
  if (!fs.existsSync(entry)) throw new Error(`${entry} is missing: run 'make build' first (make test does)`);
}

/** Writes a stack's config as TOML to its source file, all roles going to `recipients`; returns the file. */
export function writeWatcherConfig(c: PluginConfig, recipients: string[]): string {
  const q = (s: string) => JSON.stringify(s);
  fs.writeFileSync(
    c.source,
    [
      '[teleport]',
      `addr = ${q(c.teleport.addr)}`,
      `identity = ${q(c.teleport.identity as string)}`,
      '[mattermost]',
      `url = ${q(c.mattermost.url)}`,
      `token = ${q(c.mattermost.token)}`,
      '[role_to_recipients]',
      `"*" = [${recipients.map(q).join(', ')}]`,
      '[log]',
      'severity = "INFO"',
      '[http]',
      'listen_addr = "127.0.0.1:0"',
      '',
    ].join('\n'),
  );
  return c.source;
}

export interface WatcherProcess {
  child: ChildProcess;
  /** stdout and stderr so far. */
  output: () => string;
  /** The exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

/** Starts watcher processes and SIGKILLs the ones still running at killAll() (for an afterEach). */
export function watcherProcesses(): { start(configFile: string): WatcherProcess; killAll(): void } {
  const children: ChildProcess[] = [];
  return {
    start(configFile) {
      const child = spawn(process.execPath, [entry, 'start', '-c', configFile], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let out = '';
      child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      return { child, output: () => out, exited };
    },
    killAll() {
      for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    },
  };
}
