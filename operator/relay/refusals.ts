// Refusals that will not heal by themselves, per recipient: a channel the bot may not post in, a deleted
// root post, an archived channel, emails hidden from the bot. Such a refusal is permanent for that one
// recipient or post only: the relay skips it and goes on with the others (never re-queueing the request
// for it), and this registry reports it once with its fix, counts it in /metrics and lists it for the
// /readyz detail (and so the operator's status). Entries are re-checked on a slow schedule: a refused
// lookup is looked up again by recheckLoop (and its miss is cached only for the recipient cache TTL);
// a refused post, reply or edit cannot be probed without posting, so the next call for that recipient
// is its re-check. An entry is forgotten, with an info line, once a call for it succeeds.
import type { Refusal, RefusalAction, RefusalReason } from '../mattermost/refusal.js';
import type { Logger } from '../observability/logger.js';
import type { RelayMetrics } from './metrics.js';
import { sleep } from './retry.js';

export interface RefusalRecord {
  /** The recipient as configured (or `channel <id>` when its name is not known). */
  target: string;
  action: RefusalAction;
  reason: RefusalReason;
  fix: string;
  firstAt: number;
  lastAt: number;
  count: number;
}

/** Looks again whether Mattermost still refuses; true when it no longer does. */
export type Recheck = () => Promise<boolean>;

/** At most this many entries are kept (one per recipient and reason); the oldest go first. */
const MAX_ENTRIES = 1000;
/** Lines of /readyz detail. */
const MAX_DETAIL_LINES = 20;

const WHAT: Record<RefusalAction, string> = {
  lookup: 'the recipient lookup',
  post: 'the post',
  reply: 'the thread reply',
  edit: 'the edit of the post',
};

export class RefusalRegistry {
  private readonly entries = new Map<string, RefusalRecord>();
  private readonly rechecks = new Map<string, Recheck>();

  constructor(
    private readonly logger: Logger,
    private readonly metrics?: Pick<RelayMetrics, 'refusals' | 'refusedRecipients'>,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a refusal for `target`; warns the first time for this target and reason. */
  report(
    target: string,
    action: RefusalAction,
    refusal: Refusal,
    fields: Record<string, unknown> = {},
    recheck?: Recheck,
  ): void {
    const key = `${target}\u0000${refusal.reason}`;
    if (recheck) this.rechecks.set(target, recheck);
    const at = this.now();
    this.metrics?.refusals.inc({ reason: refusal.reason });
    const known = this.entries.get(key);
    if (known) {
      known.lastAt = at;
      known.count++;
      this.logger.debug('Mattermost refused this recipient again', {
        recipient: target,
        reason: refusal.reason,
      });
      return;
    }
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(key, { target, action, ...refusal, firstAt: at, lastAt: at, count: 1 });
    this.metrics?.refusedRecipients.set(this.entries.size);
    this.logger.warn(`Mattermost refused ${WHAT[action]} for this recipient; skipping it: ${refusal.fix}`, {
      recipient: target,
      reason: refusal.reason,
      ...fields,
    });
  }

  /** A call for `target` succeeded: its refusals are healed. */
  accepted(target: string): void {
    for (const [key, entry] of this.entries) {
      if (entry.target !== target) continue;
      this.entries.delete(key);
      this.rechecks.delete(target);
      this.logger.info('Mattermost accepts this recipient again', {
        recipient: target,
        reason: entry.reason,
      });
    }
    this.metrics?.refusedRecipients.set(this.entries.size);
  }

  /** Forgets the refusals of one kind of action (e.g. lookups, after a configuration reload). */
  forget(action: RefusalAction): void {
    for (const [key, entry] of this.entries) {
      if (entry.action !== action) continue;
      this.entries.delete(key);
      this.rechecks.delete(entry.target);
    }
    this.metrics?.refusedRecipients.set(this.entries.size);
  }

  /** Runs the re-checks of the entries that have one (one at a time); a failing re-check keeps the entry. */
  async recheckNow(): Promise<void> {
    for (const [target, recheck] of [...this.rechecks]) {
      const healed = await recheck().catch(() => false);
      // The re-check's own success path usually calls accepted(); make sure the entry goes.
      if (healed) this.accepted(target);
    }
  }

  /** Re-checks every `intervalMs` until `signal` aborts (the slow schedule). */
  async recheckLoop(intervalMs: number, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await sleep(intervalMs, signal).catch(() => undefined);
      if (!signal.aborted) await this.recheckNow();
    }
  }

  list(): RefusalRecord[] {
    return [...this.entries.values()].map((e) => ({ ...e }));
  }

  /** One line per refused recipient, for the /readyz body (refusals do not make the relay unready). */
  detail(): string[] {
    const all = [...this.entries.values()].sort((a, b) => b.lastAt - a.lastAt);
    const lines = all
      .slice(0, MAX_DETAIL_LINES)
      .map((e) => `refused: ${e.target} (${e.reason}, ${e.count}x): ${e.fix}`);
    if (all.length > MAX_DETAIL_LINES) lines.push(`… and ${all.length - MAX_DETAIL_LINES} more`);
    return lines;
  }
}
