// The `[review]` section: native Approve/Deny buttons (operator/review). Off by default; when on, every
// setting the click handler needs must be present and sane, or the configuration is refused. Kept apart
// from load.ts so the rest of the configuration reads as before.
import fs from 'node:fs';
import type { TableShape } from './shape.js';

export const DEFAULT_REVIEW_LISTEN_ADDR = ':8082';
export const DEFAULT_MATTERMOST_USER_ID_TRAIT = 'mattermost_user_id';
/** HMAC-SHA256 keys shorter than the hash output add no strength and hint at a mistake. */
export const MIN_SIGNING_KEY_BYTES = 32;
const MAX_SIGNING_KEY_BYTES = 4096;

export interface ReviewConfig {
  enabled: boolean;
  /** The callback listener (its own port, never the metrics port). */
  listenAddr: string;
  /** The URL Mattermost POSTs clicks to (an integration url on every button). */
  callbackUrl: string;
  /** The Teleport user trait that holds a user's Mattermost user id. */
  userIdTrait: string;
  /** Fall back to "Mattermost email == Teleport user name" when no user has the trait. */
  allowEmailUsernameMatch: boolean;
  /** Where the HMAC key for the buttons' context comes from (never log the key). */
  signingKeyFile: string;
  /** The key itself (empty when review is off or files are not read). */
  signingKey: Buffer;
}

export function disabledReview(): ReviewConfig {
  return {
    enabled: false,
    listenAddr: DEFAULT_REVIEW_LISTEN_ADDR,
    callbackUrl: '',
    userIdTrait: DEFAULT_MATTERMOST_USER_ID_TRAIT,
    allowEmailUsernameMatch: false,
    signingKeyFile: '',
    signingKey: Buffer.alloc(0),
  };
}

/** The keys of [review] and what they hold (shape.ts). */
export const REVIEW_SHAPE = {
  enabled: { type: 'boolean' },
  listen_addr: { type: 'string' },
  callback_url: { type: 'string' },
  mattermost_user_id_trait: { type: 'string' },
  allow_email_username_match: { type: 'boolean' },
  signing_key_file: { type: 'string' },
} satisfies TableShape;

export type RawReview = Partial<{
  enabled: boolean;
  listen_addr: string;
  callback_url: string;
  mattermost_user_id_trait: string;
  allow_email_username_match: boolean;
  signing_key_file: string;
}>;

const LISTEN = /^(\[[^\]]+\]|[^:\s]*)?:(\d{1,5})$/;
const portOf = (addr: string): string | undefined => LISTEN.exec(addr.trim())?.[2];

function checkCallbackUrl(raw: string, mattermostUrl: string, problems: string[]): string {
  const value = raw.trim();
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.push(
      `review.callback_url: must be an absolute http(s) URL that Mattermost can reach, e.g. "http://teleport-plugin-mattermost-review.teleport.svc:8082/mattermost/action", got '${raw}'`,
    );
    return '';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    problems.push(`review.callback_url: must use http or https, got '${url.protocol}'`);
  } else if (url.username || url.password) {
    problems.push('review.callback_url: must not carry a user or password (Mattermost would send them on)');
  } else if (url.hash) {
    problems.push('review.callback_url: must not have a #fragment');
  } else if (
    mattermostUrl &&
    url.origin === safeOrigin(mattermostUrl) &&
    url.pathname.startsWith('/plugins')
  ) {
    problems.push(
      "review.callback_url: must not be under the Mattermost server's /plugins path: Mattermost would send the clicking user's session token there",
    );
  }
  return url.toString();
}

function safeOrigin(u: string): string {
  try {
    return new URL(u).origin;
  } catch {
    return '';
  }
}

function readSigningKey(file: string, problems: string[]): Buffer {
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile() || stat.size > MAX_SIGNING_KEY_BYTES) {
      problems.push(
        `review.signing_key_file: ${file} is not a regular file of at most ${MAX_SIGNING_KEY_BYTES} bytes`,
      );
      return Buffer.alloc(0);
    }
    const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'utf8');
    if (key.length < MIN_SIGNING_KEY_BYTES) {
      problems.push(
        `review.signing_key_file: the key in ${file} has ${key.length} bytes; use at least ${MIN_SIGNING_KEY_BYTES} random bytes (e.g. \`openssl rand -base64 48 > ${file}\`)`,
      );
    }
    return key;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    problems.push(
      `review.signing_key_file: cannot read ${file} (${code}); check the path and its permissions`,
    );
    return Buffer.alloc(0);
  }
}

/** Cross-key checks of [review]; `reported` holds keys whose type was already reported. */
export function validateReview(
  raw: RawReview | undefined,
  ctx: { mattermostUrl: string; httpListenAddr: string; readFiles: boolean; reported: ReadonlySet<string> },
  problems: string[],
  warnings: string[],
): ReviewConfig {
  const r = raw ?? {};
  const out = disabledReview();
  out.listenAddr = (r.listen_addr ?? DEFAULT_REVIEW_LISTEN_ADDR).trim();
  out.userIdTrait = (r.mattermost_user_id_trait ?? DEFAULT_MATTERMOST_USER_ID_TRAIT).trim();
  out.allowEmailUsernameMatch = r.allow_email_username_match ?? false;
  if (!r.enabled) {
    const set = (Object.keys(REVIEW_SHAPE) as (keyof RawReview)[]).filter(
      (k) => k !== 'enabled' && r[k] !== undefined,
    );
    if (set.length > 0) {
      warnings.push(
        `review.${set.join(', review.')} set but review.enabled is not true; the Approve/Deny buttons stay off`,
      );
    }
    return out;
  }
  out.enabled = true;
  if (!portOf(out.listenAddr)) {
    problems.push(`review.listen_addr: must look like ":8082" or "0.0.0.0:8082", got '${out.listenAddr}'`);
  } else if (portOf(out.listenAddr) === portOf(ctx.httpListenAddr)) {
    problems.push(
      `review.listen_addr: uses the same port as http.listen_addr (${ctx.httpListenAddr}); the click listener needs its own port (default ${DEFAULT_REVIEW_LISTEN_ADDR})`,
    );
  }
  if (!r.callback_url?.trim()) {
    if (!ctx.reported.has('review.callback_url'))
      problems.push(
        "review.callback_url: missing; set the URL Mattermost calls when a button is clicked (the Service in front of review.listen_addr), and allow its host in Mattermost's ServiceSettings.AllowedUntrustedInternalConnections",
      );
  } else {
    out.callbackUrl = checkCallbackUrl(r.callback_url, ctx.mattermostUrl, problems);
  }
  if (!r.signing_key_file?.trim()) {
    if (!ctx.reported.has('review.signing_key_file'))
      problems.push(
        `review.signing_key_file: missing; point it to a file with at least ${MIN_SIGNING_KEY_BYTES} random bytes (the operator generates one in a Secret)`,
      );
  } else {
    out.signingKeyFile = r.signing_key_file.trim();
    if (ctx.readFiles) out.signingKey = readSigningKey(out.signingKeyFile, problems);
  }
  if (!out.userIdTrait && !out.allowEmailUsernameMatch) {
    problems.push(
      `review.mattermost_user_id_trait: empty, and review.allow_email_username_match is off, so no click could be mapped to a Teleport user; set the trait name (default "${DEFAULT_MATTERMOST_USER_ID_TRAIT}")`,
    );
  } else if (out.userIdTrait && !/^[A-Za-z0-9_.:/-]+$/.test(out.userIdTrait)) {
    problems.push(
      `review.mattermost_user_id_trait: must be a trait name (letters, digits, _ . : / -), got '${out.userIdTrait}'`,
    );
  }
  return out;
}
