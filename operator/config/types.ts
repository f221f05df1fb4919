import type { ReviewConfig } from './review.js';

// The validated, defaulted configuration of the watcher (`teleport-mattermost start`).
// operator/config/load.ts produces it from the upstream-compatible TOML file.

export type Severity = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';

export interface TeleportConfig {
  /** host:port of Auth (3025) or a TLS-routing Proxy (443/3080). */
  addr: string;
  /** Identity file path (tctl auth sign --format=file, tbot). Exclusive with the TLS trio. */
  identity?: string;
  refreshIdentity: boolean;
  refreshIdentityIntervalMs: number;
  clientKey?: string;
  clientCrt?: string;
  rootCas?: string;
}

export interface MattermostConfig {
  url: string;
  /** The bot token itself (already read from the file when the TOML value was a path). */
  token: string;
  /** Where the token came from: 'inline' or the file path (never log the token). */
  tokenSource: string;
  recipients: string[];
  /** PEM CA bundle path for a private Mattermost server. */
  caFile?: string;
  /** Send the requester a direct message when the request is resolved. */
  notifyRequester: boolean;
}

export interface PluginConfig {
  /** Absolute path of the file it was loaded from (for messages). */
  source: string;
  teleport: TeleportConfig;
  mattermost: MattermostConfig;
  /** role (or '*') -> recipients; already replaced by {'*': recipients} when mattermost.recipients is set. */
  roleToRecipients: Record<string, string[]>;
  log: { output: string; severity: Severity; format: LogFormat };
  http: { listenAddr: string };
  /** Native Approve/Deny buttons ([review]); absent or `enabled: false` = off (the default). */
  review?: ReviewConfig;
}
