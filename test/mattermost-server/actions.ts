// Interactive message actions, as observed on a real Mattermost 11.4.0 server (reference native-review.md,
// "Observed on a real Mattermost 11.4.0 server"):
// - POST /api/v4/posts/{post_id}/actions/{action_id} (action ids letters and digits only, else a route 404)
//   with the clicking user's token; 403 for a user not in the channel; 404 for an unknown action id;
// - the server POSTs {user_id, user_name, channel_id, channel_name, team_id, team_domain, post_id,
//   trigger_id, type, data_source, context} to the action's integration URL, Go-encoded (keys of the
//   context sorted, <>& escaped), with no signature header, and a trigger_id signed with ECDSA P-256 whose
//   public key is published as AsymmetricSigningPublicKey in GET /api/v4/config/client?format=old;
// - internal callback hosts are refused unless listed in AllowedUntrustedInternalConnections (bare IPs
//   match the literal host, CIDRs the resolved address, hostnames exactly);
// - anything but HTTP 200 with JSON (or an empty body) within OutgoingIntegrationRequestsTimeout (30 s)
//   is a 400 to the clicker; `update` replaces the post (no `message` erases the text; props omitted are
//   kept, `{}` clears them, an object replaces them and drops from_bot); `ephemeral_text` goes to the
//   clicker only (websocket), as a reply in the clicked post's thread.
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import dns from 'node:dns/promises';
import net from 'node:net';
import { AppErr, newId, type MattermostStore } from './model.js';
import { postActions } from './integrations.js';

export interface ActionSettings {
  /** ServiceSettings.AllowedUntrustedInternalConnections (space or comma separated). */
  allowedUntrustedInternalConnections: string;
  /** ServiceSettings.OutgoingIntegrationRequestsTimeout, seconds. */
  outgoingIntegrationRequestsTimeout: number;
}

export interface Ephemeral {
  userId: string;
  channelId: string;
  rootId: string;
  message: string;
  at: number;
}

/** One callback the server made, for assertions. */
export interface CallbackRecord {
  url: string;
  headers: Record<string, string>;
  body: string;
  status: number;
  error?: string;
}

const ACTION_ID = /^[A-Za-z0-9]+$/;
const MAX_RESPONSE_BYTES = 1024 * 1024;

function reserved(): net.BlockList {
  const b = new net.BlockList();
  for (const [net4, bits] of [
    ['0.0.0.0', 8],
    ['10.0.0.0', 8],
    ['100.64.0.0', 10],
    ['127.0.0.0', 8],
    ['169.254.0.0', 16],
    ['172.16.0.0', 12],
    ['192.168.0.0', 16],
  ] as const) {
    b.addSubnet(net4, bits, 'ipv4');
  }
  b.addAddress('::1', 'ipv6');
  b.addSubnet('fc00::', 7, 'ipv6');
  b.addSubnet('fe80::', 10, 'ipv6');
  return b;
}
const RESERVED = reserved();

/** Go's json.Marshal: <, > and & escaped (and U+2028/9). */
function goEscape(json: string): string {
  return json
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** map[string]interface{} through Go: object keys sorted at every level. */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(obj)
        .sort()
        .map((k) => [k, sortKeys(obj[k])]),
    );
  }
  return value;
}

export class ActionRoutes {
  readonly settings: ActionSettings = {
    allowedUntrustedInternalConnections: '',
    outgoingIntegrationRequestsTimeout: 30,
  };
  readonly ephemerals: Ephemeral[] = [];
  readonly callbacks: CallbackRecord[] = [];
  private readonly privateKey: KeyObject;
  readonly publicKeyBase64: string;

  constructor(private readonly store: MattermostStore) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    this.privateKey = privateKey;
    this.publicKeyBase64 = publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
  }

  /** GET /api/v4/config/client?format=old (no session needed). */
  clientConfig(format: string | null): Record<string, unknown> {
    if (format !== 'old') {
      throw new AppErr(
        501,
        'api.config.client.old_format.app_error',
        'New format for the client configuration is not supported yet. Please specify format=old in the query string.',
      );
    }
    return { AsymmetricSigningPublicKey: this.publicKeyBase64, Version: '11.4.0', BuildNumber: '11.4.0' };
  }

  /** What a real client gets: only the unsigned client trigger id; the callback gets the signed one. */
  signTriggerId(userId: string, nowMs = Date.now()): { clientTriggerId: string; triggerId: string } {
    const clientTriggerId = newId();
    const prefix = `${clientTriggerId}:${userId}:${nowMs}:`;
    const signature = sign('sha256', Buffer.from(prefix), { key: this.privateKey, dsaEncoding: 'der' });
    return {
      clientTriggerId,
      triggerId: Buffer.from(prefix + signature.toString('base64')).toString('base64'),
    };
  }

  private async hostAllowed(url: URL): Promise<boolean> {
    const entries = this.settings.allowedUntrustedInternalConnections.split(/[\s,]+/).filter(Boolean);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (entries.includes(host)) return true;
    let address: string;
    let family: number;
    try {
      ({ address, family } = await dns.lookup(host));
    } catch {
      return false;
    }
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (!RESERVED.check(address, type)) return true;
    return entries.some((e) => {
      const [base, bits] = e.split('/');
      if (!base || bits === undefined || net.isIP(base) === 0) return false;
      const list = new net.BlockList();
      try {
        list.addSubnet(base, Number(bits), net.isIP(base) === 6 ? 'ipv6' : 'ipv4');
      } catch {
        return false;
      }
      return list.check(address, type);
    });
  }

  /** POST /api/v4/posts/{post_id}/actions/{action_id} by `userId`. */
  async click(userId: string, postId: string, actionId: string): Promise<Record<string, unknown>> {
    if (!ACTION_ID.test(actionId))
      throw new AppErr(404, 'api.context.404.app_error', 'Sorry, we could not find the page.');
    const post = this.store.posts.get(postId);
    const channel = post ? this.store.channels.get(post.channelId) : undefined;
    if (!post || !channel || post.deleteAt > 0) {
      throw new AppErr(
        403,
        'api.context.permissions.app_error',
        'You do not have the appropriate permissions.',
        `userId=${userId}, permission=read_channel_content`,
      );
    }
    if (!channel.members.has(userId)) {
      throw new AppErr(
        403,
        'api.context.permissions.app_error',
        'You do not have the appropriate permissions.',
        `userId=${userId}, permission=read_channel_content`,
      );
    }
    const action = postActions(post.props).find((a) => a.id === actionId);
    const integration = action?.integration as { url?: unknown; context?: unknown } | undefined;
    if (!action || !integration || typeof integration.url !== 'string') {
      throw new AppErr(404, 'api.post.do_action.action_id.app_error', 'Invalid action id.');
    }
    const user = this.store.users.get(userId)!;
    const team = channel.teamId ? this.store.teams.get(channel.teamId) : undefined;
    const { clientTriggerId, triggerId } = this.signTriggerId(userId);
    const body = goEscape(
      JSON.stringify({
        user_id: userId,
        user_name: user.username,
        channel_id: channel.id,
        channel_name: channel.name,
        team_id: team?.id ?? '',
        team_domain: team?.name ?? '',
        post_id: post.id,
        trigger_id: triggerId,
        type: typeof action.type === 'string' ? action.type : '',
        data_source: typeof action.data_source === 'string' ? action.data_source : '',
        context: sortKeys(integration.context ?? {}),
      }),
    );
    const response = await this.callIntegration(integration.url, body);
    this.apply(userId, post.id, response);
    return { status: 'OK', trigger_id: clientTriggerId };
  }

  private integrationError(detail: string): AppErr {
    return new AppErr(
      400,
      'api.post.do_action.action_integration.app_error',
      'Action integration error.',
      detail,
    );
  }

  private async callIntegration(rawUrl: string, body: string): Promise<Record<string, unknown>> {
    const record: CallbackRecord = { url: rawUrl, headers: {}, body, status: 0 };
    this.callbacks.push(record);
    let url: URL;
    try {
      url = new URL(rawUrl);
    } catch {
      record.error = 'invalid url';
      throw this.integrationError('invalid url');
    }
    if (!(await this.hostAllowed(url))) {
      record.error = 'address forbidden';
      throw this.integrationError(
        `address forbidden, you may need to set AllowedUntrustedInternalConnections to allow an integration access to your internal network`,
      );
    }
    record.headers = {
      'Content-Type': 'application/json',
      Accept: 'application/json',
      'User-Agent': 'Mattermost-Bot/1.1',
    };
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: record.headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.settings.outgoingIntegrationRequestsTimeout * 1000),
      });
      text = await res.text();
    } catch (err) {
      record.error = (err as Error).name === 'TimeoutError' ? 'timeout' : String(err);
      throw this.integrationError(record.error);
    }
    record.status = res.status;
    if (res.status !== 200) throw this.integrationError(`status=${res.status}`);
    if (Buffer.byteLength(text) > MAX_RESPONSE_BYTES) throw this.integrationError('response too large');
    if (text.trim() === '') return {};
    try {
      const parsed: unknown = JSON.parse(text);
      return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
    } catch {
      throw this.integrationError('invalid json');
    }
  }

  private apply(userId: string, postId: string, response: Record<string, unknown>): void {
    const post = this.store.posts.get(postId)!;
    const update = response.update;
    if (update && typeof update === 'object') {
      const u = update as Record<string, unknown>;
      const now = this.store.now();
      post.history.push({
        message: post.message,
        props: { ...post.props },
        updateAt: post.updateAt,
        editAt: post.editAt,
      });
      post.message = typeof u.message === 'string' ? u.message : '';
      if (u.props !== undefined && u.props !== null && typeof u.props === 'object') {
        post.props = { ...(u.props as Record<string, unknown>) };
        delete post.props.from_bot;
      }
      post.editAt = now;
      post.updateAt = now;
    }
    if (typeof response.ephemeral_text === 'string' && response.ephemeral_text !== '') {
      this.ephemerals.push({
        userId,
        channelId: post.channelId,
        rootId: post.id,
        message: response.ephemeral_text,
        at: Date.now(),
      });
    }
  }
}
