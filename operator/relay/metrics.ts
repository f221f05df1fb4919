// The watcher's Prometheus metrics, on a Registry of its own (several watchers can live in one
// process in tests without clashing on the global registry).
import { Counter, Gauge, Histogram, Registry } from '../observability/metrics.js';
import { registerProcessMetrics } from '../observability/process-metrics.js';
import type { PacingGate } from '../mattermost/pacing.js';

const PREFIX = 'teleport_mattermost_';

export type PostResult = 'created' | 'adopted' | 'failed' | 'skipped';

export interface RelayMetrics {
  registry: Registry;
  events: Counter<'type'>;
  posts: Counter<'result'>;
  replies: Counter<'result'>;
  updates: Counter<'result'>;
  notices: Counter<'result'>;
  retries: Counter<'operation'>;
  requeues: Counter;
  queueDepth: Gauge;
  deliveryLatency: Histogram;
  identityExpiry: Gauge;
  watchInitialized: Gauge;
  mattermostReachable: Gauge;
  catchUps: Counter;
  refusals: Counter<'reason'>;
  refusedRecipients: Gauge;
}

/** The pacing gate's wait-time histogram and its current token estimate (operator/mattermost/pacing.ts). */
export function registerPacingMetrics(registry: Registry, gate: PacingGate): void {
  const waits = new Histogram({
    name: `${PREFIX}mattermost_pacing_wait_seconds`,
    help: 'How long Mattermost calls waited at the pacing gate for the server rate limit (calls that waited).',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10],
    registers: [registry],
  });
  gate.onWait = (ms) => waits.observe(ms / 1000);
  new Gauge({
    name: `${PREFIX}mattermost_pacing_tokens`,
    help: "Calls the pacing gate expects the server's rate limit to allow now (NaN while no limit is announced).",
    registers: [registry],
    collect() {
      this.set(gate.tokens ?? NaN);
    },
  });
  new Gauge({
    name: `${PREFIX}mattermost_pacing_waiting`,
    help: 'Mattermost calls waiting at the pacing gate.',
    registers: [registry],
    collect() {
      this.set(gate.waiting);
    },
  });
}

export function createRelayMetrics(opts: { defaultMetrics?: boolean } = {}): RelayMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics) registerProcessMetrics(registry, PREFIX);
  const registers = [registry];
  return {
    registry,
    events: new Counter({
      name: `${PREFIX}events_total`,
      help: 'Teleport watch events received, by type (INIT, PUT, DELETE, RULE_PUT, RULE_DELETE).',
      labelNames: ['type'],
      registers,
    }),
    posts: new Counter({
      name: `${PREFIX}posts_total`,
      help: 'Root posts, by result: created, adopted (found after a crash instead of re-posting), failed, skipped.',
      labelNames: ['result'],
      registers,
    }),
    replies: new Counter({
      name: `${PREFIX}replies_total`,
      help: 'Review thread replies, by result.',
      labelNames: ['result'],
      registers,
    }),
    updates: new Counter({
      name: `${PREFIX}updates_total`,
      help: 'Root post edits (status changes), by result.',
      labelNames: ['result'],
      registers,
    }),
    notices: new Counter({
      name: `${PREFIX}requester_notices_total`,
      help: 'Direct messages to requesters on resolution, by result.',
      labelNames: ['result'],
      registers,
    }),
    retries: new Counter({
      name: `${PREFIX}retries_total`,
      help: 'Retried calls after a temporary failure, by operation.',
      labelNames: ['operation'],
      registers,
    }),
    requeues: new Counter({
      name: `${PREFIX}requeues_total`,
      help: 'Requests put back on the queue after their retry budget ran out (never dropped).',
      registers,
    }),
    queueDepth: new Gauge({
      name: `${PREFIX}queue_depth`,
      help: 'Requests with work pending, waiting for a retry, or in progress.',
      registers,
    }),
    deliveryLatency: new Histogram({
      name: `${PREFIX}delivery_latency_seconds`,
      help: 'Time from an event being queued to its request being fully reconciled in Mattermost.',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    }),
    identityExpiry: new Gauge({
      name: `${PREFIX}identity_expiry_timestamp_seconds`,
      help: 'When the Teleport identity in use expires (Unix seconds).',
      registers,
    }),
    watchInitialized: new Gauge({
      name: `${PREFIX}watch_initialized`,
      help: '1 when the Teleport watch has received INIT, else 0.',
      registers,
    }),
    mattermostReachable: new Gauge({
      name: `${PREFIX}mattermost_reachable`,
      help: '1 when the last Mattermost call reached the server, else 0.',
      registers,
    }),
    catchUps: new Counter({
      name: `${PREFIX}catch_ups_total`,
      help: 'Catch-up passes (on start and after each watch reconnect).',
      registers,
    }),
    refusals: new Counter({
      name: `${PREFIX}refusals_total`,
      help:
        'Calls Mattermost refused for one recipient or post only (skipped, the others go on), by reason: ' +
        'emails_hidden, no_such_user, no_such_channel, cannot_post, cannot_edit, post_deleted, ' +
        'channel_archived, edit_time_limit, rejected.',
      labelNames: ['reason'],
      registers,
    }),
    refusedRecipients: new Gauge({
      name: `${PREFIX}refused_recipients`,
      help: 'Recipients (and reasons) Mattermost currently refuses; listed in the /readyz body.',
      registers,
    }),
  };
}
