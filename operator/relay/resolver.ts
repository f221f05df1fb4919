// Raw recipients (emails, `team/channel`) to Mattermost channel ids, with a TTL cache. A recipient
// that cannot be resolved (unknown user/channel, bad format) is warned about once and skipped; it never
// becomes an empty channel id. Temporary failures throw, so the request is retried rather than posted
// to a partial set of recipients.
import { MattermostError, type MattermostApi, type ResolvedRecipient } from '../mattermost/api.js';
import type { Logger } from '../observability/logger.js';
import { dedupe, isEmail } from './recipients.js';
import { withRetry, type RetryPolicy } from './retry.js';

interface CacheEntry {
  value: ResolvedRecipient | null;
  expiresAt: number;
}

export function recipientFormatProblem(recipient: string): string | undefined {
  if (isEmail(recipient)) return undefined;
  const parts = recipient.split('/');
  if (parts.length === 2 && parts[0] && parts[1]) return undefined;
  return `Recipient must be either a user email or a channel in the format "team/channel" but got "${recipient}"`;
}

export class RecipientResolver {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inFlight = new Map<string, Promise<ResolvedRecipient | null>>();
  private readonly warned = new Set<string>();

  constructor(
    private readonly mattermost: MattermostApi,
    private readonly logger: Logger,
    private readonly opts: { ttlMs: number; retry: RetryPolicy; onRetry?: () => void },
  ) {}

  /** Forgets cached lookups and warnings (config reload). */
  clear(): void {
    this.cache.clear();
    this.warned.clear();
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
        const resolved = await withRetry(() => this.mattermost.resolveRecipient(recipient), this.opts.retry, {
          ...(signal ? { signal } : {}),
          onRetry: () => this.opts.onRetry?.(),
        });
        if (resolved.channelId) value = resolved;
        else this.warnOnce(recipient, 'Mattermost returned no channel for this recipient; skipping it');
      } catch (err) {
        if (err instanceof MattermostError && (err.kind === 'NotFound' || err.kind === 'BadRequest')) {
          this.warnOnce(
            recipient,
            isEmail(recipient)
              ? 'No Mattermost user has this email; skipping this recipient (check the address or invite the user)'
              : 'Mattermost channel not found; skipping this recipient (check team/channel, and invite the bot to the channel)',
            { error: err.message },
          );
        } else {
          throw err;
        }
      }
    }
    this.cache.set(recipient, { value, expiresAt: Date.now() + this.opts.ttlMs });
    if (value) this.warned.delete(recipient);
    return value;
  }

  /** Resolves many, skipping unresolvable ones, de-duplicated by channel id. */
  async resolveAll(recipients: string[], signal?: AbortSignal): Promise<ResolvedRecipient[]> {
    const resolved = await Promise.all(recipients.map((r) => this.resolve(r, signal)));
    return dedupe(
      resolved.filter((r): r is ResolvedRecipient => r !== undefined && r.channelId !== ''),
      (r) => r.channelId,
    );
  }
}
