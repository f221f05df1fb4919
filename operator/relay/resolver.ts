// Raw recipients (emails, `team/channel`) to Mattermost channel ids, with a TTL cache.
//
// - A recipient Mattermost refuses for good (unknown user or channel, emails hidden from the bot, bad
//   format) is reported once (refusals.ts) and skipped; it never becomes an empty channel id. The miss
//   is cached for the TTL, so it is re-checked on that slow schedule.
// - A temporary failure (unreachable, 5xx, 429, an answer that is not the API's JSON) throws and is never
//   cached, so the request is retried rather than posted to a partial set of recipients.
// - Lookups are de-duplicated (also while in flight) and run at most LOOKUP_CONCURRENCY at a time for the
//   whole process, so thousands of recipients cannot flood Mattermost or memory.
import { MattermostError, type MattermostApi, type ResolvedRecipient } from '../mattermost/api.js';
import { refusalOf } from '../mattermost/refusal.js';
import type { Logger } from '../observability/logger.js';
import { dedupe, isEmail } from './recipients.js';
import { RefusalRegistry } from './refusals.js';
import { withRetry, type RetryPolicy } from './retry.js';

interface CacheEntry {
  value: ResolvedRecipient | null;
  expiresAt: number;
}

/** Recipient lookups in flight at once, for the whole process. */
export const LOOKUP_CONCURRENCY = 8;
/** More distinct recipients than this for one request is almost certainly a mistake: warn (once). */
export const MANY_RECIPIENTS = 100;

export function recipientFormatProblem(recipient: string): string | undefined {
  if (isEmail(recipient)) return undefined;
  const parts = recipient.split('/');
  if (parts.length === 2 && parts[0] && parts[1]) return undefined;
  return `Recipient must be either a user email or a channel in the format "team/channel" but got "${recipient}"`;
}

/** A counting semaphore: at most `limit` holders; the others wait in order. */
class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

export class RecipientResolver {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inFlight = new Map<string, Promise<ResolvedRecipient | null>>();
  private readonly warned = new Set<string>();
  /** Channel id to the recipient that resolved to it, to name channels in refusal reports. */
  private readonly names = new Map<string, string>();
  private readonly gate = new Semaphore(LOOKUP_CONCURRENCY);
  private warnedMany = false;
  readonly refusals: RefusalRegistry;

  constructor(
    private readonly mattermost: MattermostApi,
    private readonly logger: Logger,
    private readonly opts: {
      ttlMs: number;
      retry: RetryPolicy;
      onRetry?: () => void;
      refusals?: RefusalRegistry;
    },
  ) {
    this.refusals = opts.refusals ?? new RefusalRegistry(logger);
  }

  /** Forgets cached lookups and warnings (config reload). */
  clear(): void {
    this.cache.clear();
    this.warned.clear();
    this.warnedMany = false;
    this.refusals.forget('lookup');
  }

  /** The configured recipient a channel id was resolved from, else `channel <id>`. */
  nameOf(channelId: string): string {
    return this.names.get(channelId) ?? `channel ${channelId}`;
  }

  private warnOnce(recipient: string, message: string, fields: Record<string, unknown> = {}): void {
    if (this.warned.has(recipient)) return;
    this.warned.add(recipient);
    this.logger.warn(message, { recipient, ...fields });
  }

  /** The channel for one recipient, or undefined when it cannot be resolved (warned once). */
  async resolve(recipient: string, signal?: AbortSignal): Promise<ResolvedRecipient | undefined> {
    const cached = this.cache.get(recipient);
    if (cached && cached.expiresAt > Date.now()) return cached.value ?? undefined;
    let pending = this.inFlight.get(recipient);
    if (!pending) {
      pending = this.lookup(recipient, signal).finally(() => this.inFlight.delete(recipient));
      this.inFlight.set(recipient, pending);
    }
    return (await pending) ?? undefined;
  }

  private async lookup(recipient: string, signal?: AbortSignal): Promise<ResolvedRecipient | null> {
    const problem = recipientFormatProblem(recipient);
    let value: ResolvedRecipient | null = null;
    if (problem) {
      this.warnOnce(recipient, `${problem}; skipping this recipient`);
    } else {
      try {
        const resolved = await withRetry(
          () => this.gate.run(() => this.mattermost.resolveRecipient(recipient)),
          this.opts.retry,
          { ...(signal ? { signal } : {}), onRetry: () => this.opts.onRetry?.() },
        );
        if (resolved.channelId) value = resolved;
        else this.warnOnce(recipient, 'Mattermost returned no channel for this recipient; skipping it');
      } catch (err) {
        const refusal = refusalOf(err, 'lookup');
        if (!refusal) throw err;
        this.refusals.report(
          recipient,
          'lookup',
          refusal,
          { error: err instanceof MattermostError ? err.message : String(err) },
          () => this.recheck(recipient),
        );
      }
    }
    this.cache.set(recipient, { value, expiresAt: Date.now() + this.opts.ttlMs });
    if (value) {
      this.warned.delete(recipient);
      this.names.set(value.channelId, recipient);
      this.refusals.accepted(recipient);
    }
    return value;
  }

  /** Looks a refused recipient up again, past the cache; true when it resolves now. */
  private async recheck(recipient: string): Promise<boolean> {
    this.cache.delete(recipient);
    return (await this.resolve(recipient)) !== undefined;
  }

  /** Resolves many (de-duplicated first), skipping unresolvable ones, de-duplicated by channel id. */
  async resolveAll(recipients: string[], signal?: AbortSignal): Promise<ResolvedRecipient[]> {
    const distinct = dedupe(recipients.map((r) => r.trim()).filter((r) => r !== ''));
    if (distinct.length > MANY_RECIPIENTS && !this.warnedMany) {
      this.warnedMany = true;
      this.logger.warn(
        `A request goes to more than ${MANY_RECIPIENTS} distinct recipients; they are looked up ` +
          `${LOOKUP_CONCURRENCY} at a time. Check role_to_recipients and the Access Monitoring Rules ` +
          '(a channel reaches many people with one post).',
        { count: distinct.length },
      );
    }
    const resolved = await Promise.all(distinct.map((r) => this.resolve(r, signal)));
    return dedupe(
      resolved.filter((r): r is ResolvedRecipient => r !== undefined && r.channelId !== ''),
      (r) => r.channelId,
    );
  }
}
