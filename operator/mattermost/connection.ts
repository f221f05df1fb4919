// Where Mattermost is and how to trust it: the configured base URL (normalized, credentials never shown)
// and the CA file for a private server.
import fs from 'node:fs';
import tls from 'node:tls';
import { crypto } from '../node-builtins.js';
import { maskUrlCredentials } from '../observability/safe-text.js';
import { MattermostError } from './api.js';

const { X509Certificate } = crypto;

/** The URL with any user:password@ replaced by `***@`, for logs, /readyz and error messages. */
export function maskUrl(raw: string): string {
  return maskUrlCredentials(raw);
}

/**
 * Normalizes the configured URL: http(s) only, no credentials, query, fragment or trailing slash (the
 * client appends /api/v4). Credentials in the URL are dropped: fetch refuses them, and they must never
 * reach a log line.
 */
export function normalizeBaseUrl(raw: string): string {
  const shown = JSON.stringify(maskUrl(raw));
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new MattermostError(
      'BadRequest',
      `[mattermost] url ${shown} is not a URL: give the server's base URL, e.g. https://mattermost.example.com`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new MattermostError('BadRequest', `[mattermost] url ${shown} must start with https:// or http://`);
  }
  // A URL copied from the browser may carry /api/v4 or a team path; the client adds /api/v4 itself.
  const path = url.pathname.replace(/\/api\/v4\/?$/, '').replace(/\/+$/, '');
  return `${url.origin}${path}`;
}

const addedCAs = new Set<string>();

/**
 * Trusts the CA certificates in `caFile` for HTTPS to Mattermost. Node's built-in fetch takes no
 * per-request CA, and the undici npm package's Agent is not compatible with the undici inside Node 24, so
 * the certificates are added to the process-wide default CA set (tls.setDefaultCACertificates), keeping
 * every default CA. Connections that pass their own `ca` (the Teleport client does) are unaffected.
 */
export function trustCaFile(caFile: string): number {
  let text: string;
  try {
    text = fs.readFileSync(caFile, 'utf8');
  } catch (err) {
    throw new MattermostError(
      'BadRequest',
      `[mattermost] ca_file ${JSON.stringify(caFile)} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}): ` +
        'point it at a readable PEM file with the CA certificate(s) of your Mattermost server.',
    );
  }
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length === 0) {
    throw new MattermostError(
      'BadRequest',
      `[mattermost] ca_file ${JSON.stringify(caFile)} contains no PEM certificate ("-----BEGIN CERTIFICATE-----"): ` +
        'give the CA certificate of your Mattermost server in PEM form.',
    );
  }
  for (const [i, pem] of pems.entries()) {
    try {
      new X509Certificate(pem);
    } catch (err) {
      throw new MattermostError(
        'BadRequest',
        `[mattermost] ca_file ${JSON.stringify(caFile)}: certificate ${i + 1} is not valid (${(err as Error).message}).`,
      );
    }
  }
  const fresh = pems.filter((p) => !addedCAs.has(p));
  if (fresh.length > 0) {
    tls.setDefaultCACertificates([...tls.getCACertificates('default'), ...fresh]);
    for (const p of fresh) addedCAs.add(p);
  }
  return pems.length;
}
