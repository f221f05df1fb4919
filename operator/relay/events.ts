// The watch loop: Teleport's events in order, one at a time. INIT (at start and after every
// reconnect) runs a catch-up before the next event; request events go to the keyed queue, rule
// events to the rule store.
import type { Logger } from '../observability/logger.js';
import type { TeleportApi, WatchEvent, WatchKindName } from '../teleport/api.js';
import type { CatchUp } from './catchup.js';
import type { RelayMetrics } from './metrics.js';
import type { Readiness } from './readiness.js';
import { errorText, type WorkItem } from './reconcile.js';
import { AbortedError } from './retry.js';
import type { RuleStore } from './rules.js';

export interface EventLoopDeps {
  teleport: TeleportApi;
  catchUp: CatchUp;
  rules: RuleStore;
  readiness: Readiness;
  logger: Logger;
  metrics: RelayMetrics;
  enqueue: (id: string, item: WorkItem) => void;
}

export const WATCH_KINDS: WatchKindName[] = ['access_request', 'access_monitoring_rule'];

/** Runs until `signal` aborts (resolves) or the watch fails for good (rejects). */
export async function runEventLoop(deps: EventLoopDeps, signal: AbortSignal): Promise<void> {
  try {
    for await (const event of deps.teleport.watch(WATCH_KINDS, signal)) {
      if (signal.aborted) break;
      await handleEvent(deps, event, signal);
    }
  } catch (err) {
    if (!signal.aborted && !(err instanceof AbortedError)) throw err;
  }
}

async function handleEvent(deps: EventLoopDeps, event: WatchEvent, signal: AbortSignal): Promise<void> {
  const { logger, enqueue, readiness } = deps;
  deps.metrics.events.inc({ type: event.type });
  switch (event.type) {
    case 'INIT':
      if (!readiness.watchUp) logger.info('Plugin is ready');
      else logger.info('Watch re-initialised; catching up');
      readiness.watchInitialized();
      try {
        await deps.catchUp.run(signal);
      } catch (err) {
        if (err instanceof AbortedError || signal.aborted) throw err;
        // Never fatal: events keep flowing, and the next INIT (or restart) catches up again.
        logger.error('Catch-up failed', { error: errorText(err) });
      }
      break;
    case 'DOWN':
      readiness.watchLost(event.reason);
      break;
    case 'PUT':
      logger.debug('Access request event', { request_id: event.request.id, state: event.request.state });
      enqueue(event.request.id, { kind: 'put', request: event.request, origin: 'event' });
      break;
    case 'DELETE':
      logger.debug('Access request deleted', { request_id: event.requestId });
      enqueue(event.requestId, { kind: 'delete', origin: 'event' });
      break;
    case 'RULE_PUT':
      deps.rules.put(event.rule);
      break;
    case 'RULE_DELETE':
      deps.rules.delete(event.name);
      break;
  }
}
