import { MattermostError, isMattermostError } from '../../../operator/mattermost/api.js';
import {
  DEFAULT_RETRY_AFTER_MS,
  errorFromNetwork,
  errorFromResponse,
  retryAfterMs,
} from '../../../operator/mattermost/errors.js';
import {
  isChannelHandle,
  isEmail,
  parseRecipient,
  sameDisplayName,
} from '../../../operator/mattermost/recipient.js';
import { normalizeBaseUrl } from '../../../operator/mattermost/client.js';

const URL = 'https://mm.example.com/api/v4/posts';
const appError = (status: number, id = 'some.error') => ({
  id,
  message: 'Something',
  detailed_error: '',
  request_id: 'r',
  status_code: status,
});

describe('errorFromResponse', () => {
  it.each([
    [400, 'BadRequest', false],
    [401, 'Unauthorized', false],
    [403, 'Forbidden', false],
    [404, 'NotFound', false],
    [405, 'BadRequest', false],
    [413, 'BadRequest', false],
    [429, 'RateLimited', true],
    [500, 'Unavailable', true],
    [502, 'Unavailable', true],
    [503, 'Unavailable', true],
    [504, 'Unavailable', true],
  ])('maps %i to %s (temporary: %s)', (status, kind, temporary) => {
    const err = errorFromResponse('POST /posts', URL, status, new Headers(), appError(status));
    expect(err).toBeInstanceOf(MattermostError);
    expect(err.kind).toBe(kind);
    expect(err.status).toBe(status);
    expect(err.temporary).toBe(temporary);
    expect(err.message).toContain(
      `Mattermost POST /posts at ${URL} failed with HTTP ${status} (some.error: Something)`,
    );
  });

  it('says the token is rejected or the bot disabled on 401', () => {
    const err = errorFromResponse('GET /users/me', URL, 401, new Headers(), appError(401));
    expect(err.message).toMatch(
      /token was rejected.*\[mattermost\] token is wrong or revoked.*bot account is disabled/,
    );
  });

  it('describes plain-text and empty bodies', () => {
    const text = errorFromResponse(
      'x',
      URL,
      502,
      new Headers({ 'Content-Type': 'text/html' }),
      '<html>Bad   gateway</html>',
    );
    expect(text.message).toContain('(<html>Bad gateway</html>)');
    const empty = errorFromResponse('x', URL, 503, new Headers({ 'Content-Type': 'text/plain' }), '');
    expect(empty.message).toContain('(empty text/plain body)');
    const long = errorFromResponse('x', URL, 500, new Headers(), 'y'.repeat(500));
    expect(long.message.length).toBeLessThan(400);
  });

  it('reads Retry-After, then X-Ratelimit-Reset (seconds, not an epoch), then a default', () => {
    const limited = (h: Record<string, string>) =>
      errorFromResponse('x', URL, 429, new Headers(h), 'limit exceeded\n').retryAfterMs;
    expect(limited({ 'Retry-After': '3', 'X-Ratelimit-Reset': '9' })).toBe(3000);
    expect(limited({ 'X-Ratelimit-Reset': '9' })).toBe(9000);
    expect(limited({ 'Retry-After': '0.2' })).toBe(200);
    expect(limited({ 'Retry-After': '0' })).toBe(1);
    expect(limited({})).toBe(DEFAULT_RETRY_AFTER_MS);
    expect(limited({ 'Retry-After': 'soon' })).toBe(DEFAULT_RETRY_AFTER_MS);
    const date = new Date(Date.now() + 5000).toUTCString();
    expect(retryAfterMs(new Headers({ 'Retry-After': date }))).toBeGreaterThan(3000);
  });
});

describe('errorFromNetwork', () => {
  const fetchFailed = (cause: object) => Object.assign(new TypeError('fetch failed'), { cause });

  it('names the URL and the refused connection', () => {
    const err = errorFromNetwork(
      'GET /users/me',
      URL,
      fetchFailed({ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' }),
      1000,
    );
    expect(err.kind).toBe('Unavailable');
    expect(err.message).toBe(
      `Mattermost GET /users/me at ${URL} failed: connection refused: is Mattermost running and is [mattermost] url right? (ECONNREFUSED).`,
    );
  });

  it('points at ca_file for TLS verification failures', () => {
    for (const code of [
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'ERR_TLS_CERT_ALTNAME_INVALID',
    ]) {
      const err = errorFromNetwork('x', URL, fetchFailed({ code }), 1000);
      expect(err.kind).toBe('Unavailable');
      expect(err.message).toContain(`TLS verification of the server failed (${code})`);
      expect(err.message).toContain('[mattermost] ca_file');
    }
  });

  it('marks failures before the request reached Mattermost as not processed, and only those', () => {
    for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'DEPTH_ZERO_SELF_SIGNED_CERT']) {
      expect(errorFromNetwork('x', URL, fetchFailed({ code }), 1000).notProcessed).toBe(true);
    }
    for (const code of ['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']) {
      expect(errorFromNetwork('x', URL, fetchFailed({ code }), 1000).notProcessed).toBe(false);
    }
    expect(new MattermostError('RateLimited', 'slow down', 429, 1000).notProcessed).toBe(true);
    expect(new MattermostError('Unavailable', 'bad gateway', 502).notProcessed).toBe(false);
  });

  it('reports timeouts with the limit', () => {
    const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    expect(errorFromNetwork('x', URL, timeout, 2500).message).toMatch(/did not answer within 2500 ms/);
  });

  it('keeps unknown causes readable', () => {
    expect(errorFromNetwork('x', URL, new Error('boom'), 1).message).toContain('failed: boom');
    expect(errorFromNetwork('x', URL, fetchFailed({ code: 'EWEIRD' }), 1).message).toContain('EWEIRD');
  });
});

describe('recipients', () => {
  it('parses emails and team/channel, and refuses the rest with the upstream message', () => {
    expect(parseRecipient('alice@example.com')).toEqual({ kind: 'email', email: 'alice@example.com' });
    expect(parseRecipient(' myteam/Town Square ')).toEqual({
      kind: 'channel',
      team: 'myteam',
      channel: 'Town Square',
    });
    for (const bad of ['fallback', 'a/b/c', '/x', 'x/', 'alice@example.com/x', '']) {
      const parsed = parseRecipient(bad);
      expect(parsed.kind).toBe('invalid');
      if (parsed.kind === 'invalid') {
        expect(parsed.reason).toBe(
          `Recipient must be either a user email or a channel in the format "team/channel" but got ${JSON.stringify(bad)}`,
        );
      }
    }
  });

  it('accepts only bare email addresses (as upstream filters suggested reviewers)', () => {
    expect(isEmail('a.b+c@example.co.uk')).toBe(true);
    for (const bad of [
      'Alice <a@example.com>',
      'a@@b',
      'a b@example.com',
      '@example.com',
      'a@',
      '.a@x',
      'a..b@x',
    ]) {
      expect(isEmail(bad)).toBe(false);
    }
  });

  it('knows channel handles and compares display names loosely', () => {
    expect(isChannelHandle('town-square')).toBe(true);
    expect(isChannelHandle('Town-Square')).toBe(false);
    expect(isChannelHandle('town square')).toBe(false);
    expect(sameDisplayName(' Town  Square', 'town square')).toBe(true);
    expect(sameDisplayName('Town Square', 'Town Squares')).toBe(false);
  });
});

describe('helpers', () => {
  it('normalizes the base URL', () => {
    expect(normalizeBaseUrl('https://mm.example.com/')).toBe('https://mm.example.com');
    expect(normalizeBaseUrl('https://mm.example.com/api/v4')).toBe('https://mm.example.com');
    expect(normalizeBaseUrl('https://example.com/chat/?x=1#y')).toBe('https://example.com/chat');
  });

  it('isMattermostError checks the kind', () => {
    const err = new MattermostError('RateLimited', 'x', 429, 1000);
    expect(isMattermostError(err)).toBe(true);
    expect(isMattermostError(err, 'RateLimited')).toBe(true);
    expect(isMattermostError(err, 'NotFound')).toBe(false);
    expect(isMattermostError(new Error('x'))).toBe(false);
  });
});
