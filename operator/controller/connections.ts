// Connection reuse for @kubernetes/client-node 2.x. Its KubeConfig builds a new undici Agent for every
// request (createDispatcher is not cached), so each API call pays a TLS handshake and leaves an idle
// socket behind: at 500 resources that made a cold start slow and the process hundreds of MiB large.
// shareConnections() makes a KubeConfig hand out one Agent per distinct TLS setting (keyed by a hash
// of the options, so rotated client certificates still get a fresh Agent).
import { createHash } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';

/** The part of an undici Dispatcher used here. */
interface Dispatcher {
  close(): Promise<void>;
}

type CreateDispatcher = (cluster: unknown, agentOptions: unknown) => Dispatcher | undefined;
interface Patched {
  createDispatcher: CreateDispatcher;
  createDispatcherOptions: (cluster: unknown, agentOptions: unknown) => unknown;
}

export interface SharedConnections {
  /** Restores per-request Agents and closes the shared ones. */
  release(): Promise<void>;
}

export function shareConnections(kc: KubeConfig): SharedConnections {
  const target = kc as unknown as Patched;
  if (typeof target.createDispatcher !== 'function' || typeof target.createDispatcherOptions !== 'function') {
    // A client-node version without these internals: nothing to patch, requests still work.
    return { release: async () => {} };
  }
  const original = target.createDispatcher;
  const hadOwn = Object.prototype.hasOwnProperty.call(target, 'createDispatcher');
  const cache = new Map<string, Dispatcher | undefined>();
  target.createDispatcher = function (cluster: unknown, agentOptions: unknown) {
    const key = createHash('sha256')
      .update(JSON.stringify(target.createDispatcherOptions(cluster, agentOptions)) ?? '')
      .digest('hex');
    if (!cache.has(key)) cache.set(key, original.call(this, cluster, agentOptions));
    return cache.get(key);
  };
  return {
    async release() {
      if (hadOwn) target.createDispatcher = original;
      else delete (target as Partial<Patched>).createDispatcher;
      const dispatchers = [...cache.values()].filter((d): d is Dispatcher => d !== undefined);
      cache.clear();
      await Promise.all(dispatchers.map((d) => d.close().catch(() => undefined)));
    },
  };
}
