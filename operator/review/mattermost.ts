// The two Mattermost reads native reviews need, with the bot token: the server's trigger_id signing key
// (public, cached until a verification fails) and a user's email (for the opt-in email fallback; empty
// when privacy settings hide it from the bot).
import type { KeyObject } from 'node:crypto';
import { normalizeBaseUrl } from '../mattermost/client.js';
import { createTransport } from '../mattermost/transport.js';
import type { Logger } from '../observability/logger.js';
import { publicKeyFromMattermost } from './trigger.js';

export interface ReviewMattermost {
  /** The current AsymmetricSigningPublicKey; `refresh` fetches it again (e.g. after a verify failure). */
  signingKey(refresh?: boolean): Promise<KeyObject>;
  emailOf(userId: string): Promise<string>;
}

export function reviewMattermost(
  url: string,
  token: string,
  logger: Logger,
  timeoutMs = 5000,
): ReviewMattermost {
  // The relay's transport (answers capped and classified the same way), without its pacing gate: these
  // reads are rare, one per click at most.
  const transport = createTransport({
    baseUrl: normalizeBaseUrl(url),
    token,
    timeoutMs,
    userAgent: 'teleport-plugin-mattermost',
    logger,
  });
  let key: { at: number; value: Promise<KeyObject> } | undefined;
  const get = (path: string) => transport.call<Record<string, unknown>>('review lookup', path, 'GET');
  return {
    signingKey(refresh = false) {
      // A refresh at most every 10 s: a flood of forged trigger ids must not become a flood of GETs.
      if (key && (!refresh || Date.now() - key.at < 10_000)) return key.value;
      const value = get('/config/client?format=old').then((cfg) => {
        const spki = cfg.AsymmetricSigningPublicKey;
        if (typeof spki !== 'string' || !spki) {
          throw new Error('Mattermost did not publish AsymmetricSigningPublicKey in its client config');
        }
        return publicKeyFromMattermost(spki);
      });
      const entry = { at: Date.now(), value };
      key = entry;
      value.catch(() => {
        if (key === entry) key = undefined;
      });
      return value;
    },
    async emailOf(userId) {
      const user = await get(`/users/${encodeURIComponent(userId)}`);
      return typeof user.email === 'string' ? user.email : '';
    },
  };
}
