// The plugin configuration every relay test stack runs with: the fake Teleport's auth address and
// identity, a Mattermost URL and bot token, quiet logs and an ephemeral HTTP port. One source for the
// fake-server stacks (relay, review) and the real-Mattermost tier, which differ only in what they pass.
import path from 'node:path';
import { disabledReview, type ReviewConfig } from '../../../operator/config/review.js';
import type { PluginConfig } from '../../../operator/config/types.js';

export function relayTestConfig(o: {
  /** The stack's temporary directory (the config's nominal source lives there). */
  dir: string;
  teleportAddr: string;
  identity: string;
  mattermostUrl: string;
  token: string;
  roleToRecipients: Record<string, string[]>;
  notifyRequester?: boolean | undefined;
  review?: ReviewConfig;
}): PluginConfig {
  return {
    source: path.join(o.dir, 'teleport-mattermost.toml'),
    teleport: {
      addr: o.teleportAddr,
      identity: o.identity,
      refreshIdentity: false,
      refreshIdentityIntervalMs: 60_000,
    },
    mattermost: {
      url: o.mattermostUrl,
      token: o.token,
      tokenSource: 'inline',
      recipients: [],
      notifyRequester: o.notifyRequester ?? false,
    },
    roleToRecipients: o.roleToRecipients,
    log: { output: 'stderr', severity: 'error', format: 'text' },
    http: { listenAddr: '127.0.0.1:0' },
    ...(o.review ? { review: o.review } : {}),
  };
}

/** [review] on, listening on 127.0.0.1:port, with the key both read from keyFile and held in memory. */
export function reviewTestConfig(o: {
  port: number;
  callbackUrl: string;
  keyFile: string;
  key: string;
  allowEmailUsernameMatch?: boolean;
}): ReviewConfig {
  return {
    ...disabledReview(),
    enabled: true,
    listenAddr: `127.0.0.1:${o.port}`,
    callbackUrl: o.callbackUrl,
    allowEmailUsernameMatch: o.allowEmailUsernameMatch ?? false,
    signingKeyFile: o.keyFile,
    signingKey: Buffer.from(o.key),
  };
}
