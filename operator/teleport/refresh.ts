// Identity refresh for `refresh_identity = true`: re-reads the identity file on an interval and whenever its
// directory changes. Kubernetes updates Secret volumes by writing a new `..<timestamp>` directory and
// renaming the `..data` symlink over the old one, so the directory is watched, not the file (a watch on the
// file would stay on the old inode). Lives until stop(), for the whole process (upstream's refresh died with
// its start-up context).
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from '../observability/logger.js';
import { checkValidity, parseIdentity, readText } from './identity.js';
import type { Identity } from './identity.js';

export interface IdentityRefresherOptions {
  path: string;
  intervalMs: number;
  logger: Logger;
  initial: Identity;
  onChange: (identity: Identity) => void;
  /** Quiet time after a directory event before re-reading (the swap is several renames). */
  debounceMs?: number;
  now?: () => Date;
}

export class IdentityRefresher {
  private current: Identity;
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private reading: Promise<boolean> | undefined;
  private stopped = false;

  constructor(private readonly opts: IdentityRefresherOptions) {
    this.current = opts.initial;
  }

  start(): void {
    this.timer = setInterval(() => void this.reload('interval').catch(() => undefined), this.opts.intervalMs);
    this.timer.unref();
    try {
      // Only the identity file itself and the Secret volume's `..data` swap matter: a log file written
      // next to the identity must not cause a re-read (and, while expired, a warning) per line.
      const watched = new Set([basename(this.opts.path), '..data']);
      this.watcher = watch(dirname(this.opts.path), { persistent: false }, (_event, name) => {
        if (name === null || watched.has(String(name))) this.scheduleReload();
      });
      this.watcher.on('error', (err) => {
        this.opts.logger.warn('Cannot watch the identity file directory; relying on the refresh interval', {
          identity: this.opts.path,
          error: err.message,
        });
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch (err) {
      this.opts.logger.warn('Cannot watch the identity file directory; relying on the refresh interval', {
        identity: this.opts.path,
        error: (err as Error).message,
      });
    }
  }

  private scheduleReload(): void {
    if (this.stopped) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(
      () => void this.reload('file change').catch(() => undefined),
      this.opts.debounceMs ?? 100,
    );
    this.debounce.unref();
  }

  /** Re-reads the file now; resolves true when a different, valid identity was taken. */
  reload(reason = 'manual'): Promise<boolean> {
    if (this.reading) return this.reading.then(() => this.reload(reason));
    this.reading = this.readOnce(reason).finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async readOnce(reason: string): Promise<boolean> {
    if (this.stopped) return false;
    const { path, logger } = this.opts;
    let next: Identity;
    try {
      next = parseIdentity(await readText(path, 'identity file'), path);
      checkValidity(next, this.opts.now?.() ?? new Date());
    } catch (err) {
      // Keep the current identity: the writer may be mid-update, or the new file is bad.
      logger.warn('Could not reload the Teleport identity; keeping the current one', {
        identity: path,
        reason,
        error: (err as Error).message,
        current_expires: this.current.notAfter.toISOString(),
      });
      return false;
    }
    if (next.fingerprint === this.current.fingerprint || this.stopped) return false;
    this.current = next;
    logger.info('Reloaded the Teleport identity', {
      identity: path,
      reason,
      expires: next.notAfter.toISOString(),
      cluster: next.clusterName,
    });
    try {
      this.opts.onChange(next);
    } catch (err) {
      // Never let a renewal take the process down; the next renewal tries again.
      logger.error('Could not switch to the reloaded Teleport identity', {
        identity: path,
        error: (err as Error).message,
      });
    }
    return true;
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    this.watcher?.close();
  }
}
