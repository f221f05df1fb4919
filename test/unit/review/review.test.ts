// Pure parts of native reviews: the trigger_id check (exact byte layout as verified on a real server),
// the button context MAC (survives Mattermost's re-encoding, nothing else), the user mapping and the
// classification of Teleport's answers.
import { generateKeyPairSync, sign } from 'node:crypto';
import { TeleportError } from '../../../operator/teleport/api.js';
import type { TeleportUser } from '../../../operator/teleport/api.js';
import { signContext, verifyContext } from '../../../operator/review/context.js';
import { classifySubmitError, lookupFailure } from '../../../operator/review/handler.js';
import { publicKeyFromMattermost, verifyTriggerId } from '../../../operator/review/trigger.js';
import { UserMapper } from '../../../operator/review/users.js';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const published = publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
const key = publicKeyFromMattermost(published);
const NOW = 1_790_000_000_000;

function trigger(user: string, at: number, opts: { dropColon?: boolean; raw?: boolean } = {}): string {
  const prefix = `abcdefghijklmnopqrstuvwxyz:${user}:${at}:`;
  const signed = opts.dropColon ? prefix.slice(0, -1) : prefix;
  const sig = sign('sha256', Buffer.from(signed), {
    key: privateKey,
    dsaEncoding: opts.raw ? 'ieee-p1363' : 'der',
  });
  return Buffer.from(prefix + sig.toString('base64')).toString('base64');
}

describe('trigger_id', () => {
  it('accepts the exact layout: DER signature over the prefix including the trailing colon', () => {
    expect(verifyTriggerId(trigger('u1', NOW - 1000), 'u1', key, 30_000, NOW)).toEqual({
      ok: true,
      clientTriggerId: 'abcdefghijklmnopqrstuvwxyz',
      issuedAtMs: NOW - 1000,
    });
  });
  it.each([
    ['no trailing colon signed', trigger('u1', NOW, { dropColon: true }), 'u1', 'signature'],
    ['raw r||s signature', trigger('u1', NOW, { raw: true }), 'u1', 'signature'],
    ['another user', trigger('u2', NOW), 'u1', 'other_user'],
    ['too old', trigger('u1', NOW - 31_000), 'u1', 'expired'],
    ['from the future', trigger('u1', NOW + 120_000), 'u1', 'future'],
    ['not base64 of four fields', 'abc', 'u1', 'malformed'],
    ['not a string', 42, 'u1', 'malformed'],
  ])('refuses %s', (_what, t, user, reason) => {
    expect(verifyTriggerId(t, user as string, key, 30_000, NOW)).toEqual({ ok: false, reason });
  });
  it('refuses a key that is not P-256', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    expect(() =>
      publicKeyFromMattermost(rsa.export({ format: 'der', type: 'spki' }).toString('base64')),
    ).toThrow(/P-256/);
  });
});

describe('button context', () => {
  const k = Buffer.from('k'.repeat(40));
  const ctx = signContext(k, 'req-<&>', 'approve', 'chan', NOW);
  it('verifies after Mattermost re-encodes it (keys sorted, <>& escaped)', () => {
    const reencoded = JSON.stringify(Object.fromEntries(Object.entries(ctx).sort()))
      .replace(/</g, '\\u003c')
      .replace(/&/g, '\\u0026')
      .replace(/>/g, '\\u003e');
    expect(verifyContext(k, JSON.parse(reencoded))).toEqual(ctx);
  });
  it.each([
    ['another request', { ...ctx, request_id: 'other' }],
    ['another action', { ...ctx, action: 'deny' }],
    ['another channel', { ...ctx, channel_id: 'x' }],
    ['another time', { ...ctx, issued_at: String(NOW + 1) }],
    ['a number instead of a string', { ...ctx, issued_at: NOW }],
    ['a truncated mac', { ...ctx, mac: ctx.mac.slice(0, 10) }],
    ['no mac', { ...ctx, mac: '' }],
    ['not an object', 'x'],
  ])('refuses %s', (_what, forged) => {
    expect(verifyContext(k, forged)).toBeUndefined();
  });
  it('refuses a context signed with another key', () => {
    expect(verifyContext(Buffer.from('z'.repeat(40)), ctx)).toBeUndefined();
  });
});

describe('user mapping', () => {
  const users: TeleportUser[] = [
    { name: 'bob', roles: [], traits: { mattermost_user_id: ['u-bob'] } },
    { name: 'bobby', roles: [], traits: { mattermost_user_id: ['u-bob-2'] } },
    { name: 'twin-a', roles: [], traits: { mattermost_user_id: ['u-twin'] } },
    { name: 'twin-b', roles: [], traits: { mattermost_user_id: ['u-twin'] } },
    { name: 'frank@example.com', roles: [], traits: {} },
  ];
  function api() {
    const calls = { list: 0 };
    return {
      calls,
      listUsers: async (token: string, size: number) => {
        calls.list++;
        const from = token ? Number(token) : 0;
        const next = from + size < users.length ? String(from + size) : '';
        return { users: users.slice(from, from + size), nextPageToken: next };
      },
      getUser: async (name: string) => users.find((u) => u.name === name),
    };
  }
  const opts = {
    trait: 'mattermost_user_id',
    allowEmailUsernameMatch: false,
    emailOf: async () => '',
    pageSize: 2,
  };

  it('matches the trait exactly (no substring), across pages', async () => {
    const mapper = new UserMapper(api(), opts);
    expect(await mapper.resolve('u-bob')).toEqual({ kind: 'user', name: 'bob', via: 'trait' });
    expect(await mapper.resolve('u-bo')).toEqual({ kind: 'none' });
    expect(await mapper.resolve('u-twin')).toEqual({ kind: 'ambiguous', names: ['twin-a', 'twin-b'] });
  });
  it('lists users once per TTL, shared by concurrent clicks', async () => {
    const t = api();
    let now = 0;
    const mapper = new UserMapper(t, { ...opts, ttlMs: 1000, now: () => now });
    await Promise.all([mapper.resolve('u-bob'), mapper.resolve('u-twin'), mapper.resolve('x')]);
    expect(t.calls.list).toBe(3); // 5 users, 2 per page
    now = 2000;
    await mapper.resolve('u-bob');
    expect(t.calls.list).toBe(6);
  });
  it('falls back to email == user name only when allowed, and only with a visible email', async () => {
    const emailOf = async (id: string) => (id === 'u-frank' ? 'frank@example.com' : '');
    expect(await new UserMapper(api(), { ...opts, emailOf }).resolve('u-frank')).toEqual({ kind: 'none' });
    const allowed = new UserMapper(api(), { ...opts, emailOf, allowEmailUsernameMatch: true });
    expect(await allowed.resolve('u-frank')).toEqual({
      kind: 'user',
      name: 'frank@example.com',
      via: 'email',
    });
    expect(await allowed.resolve('u-hidden')).toEqual({ kind: 'none' });
  });
});

describe("Teleport's answers", () => {
  it.each([
    ['AccessDenied', 'user "bob" has already reviewed this request', 'already_reviewed'],
    ['AccessDenied', 'the access request has been already approved', 'resolved'],
    ['AccessDenied', 'user "p" cannot submit reviews on behalf of "bob"', 'unsupported'],
    ['AccessDenied', 'user "bob" cannot review access request "x"', 'no_permission'],
    ['NotFound', 'access_request "x" doesn\'t exist', 'resolved'],
    ['Unavailable', 'connection refused', 'unavailable'],
    ['LimitExceeded', 'too many', 'unavailable'],
  ] as const)('%s "%s" → %s', (kind, message, outcome) => {
    expect(classifySubmitError(new TeleportError(kind, message))).toBe(outcome);
  });
});

test('a Teleport without the users API or the rights to read fails closed as "unsupported"', () => {
  expect(lookupFailure(new TeleportError('NotImplemented', 'unknown method ListUsers'))).toBe('unsupported');
  expect(
    lookupFailure(new TeleportError('AccessDenied', 'access denied to perform action "list" on "user"')),
  ).toBe('unsupported');
  expect(lookupFailure(new TeleportError('Unavailable', 'connection refused'))).toBe('unavailable');
  expect(lookupFailure(new Error('Mattermost GET /config/client answered HTTP 502'))).toBe('unavailable');
});
