// Taking a new Mattermost token without a restart: on SIGHUP (reload) and when the token file changes
// (a Secret update swaps `..data`), a new client is built with the new token and swapped in; every part
// of the relay holds the SwappableMattermost, so the next call uses it. Until Mattermost accepts a token
// again, /readyz says the token is refused (readiness.ts).
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { readToken, tokenHeaderProblem } from '../config/load.js';
import type { MattermostConfig } from '../config/types.js';
import type { MattermostApi, NewPost } from '../mattermost/api.js';
import { registerSecret, type Logger } from '../observability/logger.js';
import { checkMattermostNow, type Readiness } from './readiness.js';
import { errorText } from './reconcile.js';

export class SwappableMattermost implements MattermostApi {
  constructor(private current: MattermostApi) {}

  swap(next: MattermostApi): void {
    this.current = next;
  }

  getMe() {
    return this.current.getMe();
  }
  resolveRecipient(recipient: string) {
    return this.current.resolveRecipient(recipient);
  }
  createPost(post: NewPost) {
    return this.current.createPost(post);
  }
  updatePost(postId: string, message: string, props?: Record<string, unknown>) {
    return this.current.updatePost(postId, message, props);
  }
  listPostsSince(channelId: string, sinceMs: number) {
    return this.current.listPostsSince(channelId, sinceMs);
  }
}

/** Whether a new [mattermost] section needs a new client (the token, URL or CA changed). */
export function clientSettingsChanged(a: MattermostConfig, b: MattermostConfig): boolean {
  return a.token !== b.token || a.url !== b.url || a.caFile !== b.caFile;
}

/**
 * Watches a token file (the directory, filtered to the file and `..data`) and calls `onToken` with a
 * new, valid token. A token that cannot be used is logged (never shown) and the current one kept.
 */
export function watchTokenFile(
  file: string,
  current: () => string,
  onToken: (token: string) => void,
  logger: Logger,
  debounceMs = 200,
): { close(): void } {
  let timer: NodeJS.Timeout | undefined;
  const reread = () => {
    const problems: string[] = [];
    const token = readToken(file, problems);
    const problem = problems[0] ?? (token ? tokenHeaderProblem(token) : undefined);
    if (problem) {
      logger.warn('The Mattermost token file changed but cannot be used; keeping the current token', {
        file,
        problem,
      });
      return;
    }
    if (token === current()) return;
    registerSecret(token);
    logger.info('The Mattermost token file changed; using the new token', { file });
    onToken(token);
  };
  const names = new Set([basename(file), '..data']);
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(file), { persistent: false }, (_event, name) => {
      if (name !== null && !names.has(String(name))) return;
      clearTimeout(timer);
      timer = setTimeout(reread, debounceMs);
      timer.unref();
    });
    watcher.on('error', () => watcher?.close());
  } catch (err) {
    logger.warn('Cannot watch the Mattermost token file; a new token needs a reload (SIGHUP)', {
      file,
      error: (err as Error).message,
    });
  }
  return {
    close() {
      clearTimeout(timer);
      watcher?.close();
    },
  };
}

export interface TokenRotationDeps {
  mattermost: SwappableMattermost;
  readiness: Readiness;
  logger: Logger;
  /** Builds a client for new settings; undefined when clients were injected (tests without rotation). */
  factory: ((cfg: MattermostConfig) => MattermostApi | Promise<MattermostApi>) | undefined;
  /** After a swap (the recipient cache is the old client's view). */
  onSwap: () => void;
}

export class TokenRotation {
  private file: { close(): void } | undefined;

  constructor(private readonly deps: TokenRotationDeps) {}

  /** Builds a client with `cfg` and swaps it in; readiness follows its answer to GET /users/me. */
  async swap(cfg: MattermostConfig): Promise<void> {
    const { factory, mattermost, readiness } = this.deps;
    if (!factory) return;
    mattermost.swap(await factory(cfg));
    this.deps.onSwap();
    await checkMattermostNow(mattermost, readiness);
  }

  /** When the token comes from a file, a new token there is taken (`update` returns the new settings). */
  watchFile(cfg: MattermostConfig, update: (token: string) => MattermostConfig): void {
    if (!this.deps.factory || cfg.tokenSource === 'inline') return;
    let current = cfg.token;
    this.file = watchTokenFile(
      cfg.tokenSource,
      () => current,
      (token) => {
        current = token;
        void this.swap(update(token)).catch((err: unknown) =>
          this.deps.logger.error('Could not use the new Mattermost token', { error: errorText(err) }),
        );
      },
      this.deps.logger,
    );
  }

  close(): void {
    this.file?.close();
  }
}
