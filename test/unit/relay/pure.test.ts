import { MattermostError } from '../../../operator/mattermost/api.js';
import {
  TeleportError,
  type AccessMonitoringRule,
  type AccessRequest,
} from '../../../operator/teleport/api.js';
import { evaluateRuleCondition, checkRuleCondition } from '../../../operator/relay/amr.js';
import {
  decodePluginData,
  emptyPluginData,
  encodePluginData,
  expectAbsent,
  pendingChannels,
} from '../../../operator/relay/plugindata.js';
import { chooseRecipients, isEmail, rawRecipientsFor } from '../../../operator/relay/recipients.js';
import { recipientFormatProblem } from '../../../operator/relay/resolver.js';
import { backoffDelay, classifyError, nextRetryDelay } from '../../../operator/relay/retry.js';
import { mergeWork, targetResolution } from '../../../operator/relay/reconcile.js';
import { parseResourceName, pluginDataFields, requestFromPluginData } from '../../../operator/relay/view.js';

function request(partial: Partial<AccessRequest> = {}): AccessRequest {
  return {
    id: 'req-1',
    user: 'alice@example.com',
    roles: ['editor'],
    state: 'PENDING',
    created: new Date(),
    expires: undefined,
    resourceExpires: undefined,
    requestReason: '',
    resolveReason: '',
    reviews: [],
    suggestedReviewers: [],
    requestedResources: [],
    systemAnnotations: {},
    loginHint: '',
    ...partial,
  };
}

describe('plugin data (upstream keys)', () => {
  it('encodes messages as channel/post,… and the upstream keys', () => {
    const d = {
      ...emptyPluginData(),
      user: 'alice',
      roles: ['a', 'b'],
      requestReason: 'why',
      reviewsCount: 2,
      resolution: 'APPROVED' as const,
      resolveReason: 'ok',
      messages: [
        { channelId: 'CHANNEL1', postId: '0000001' },
        { channelId: 'CHANNEL2', postId: '0000002' },
      ],
    };
    const enc = encodePluginData(d);
    expect(enc).toMatchObject({
      user: 'alice',
      roles: 'a,b',
      request_reason: 'why',
      reviews_count: '2',
      resolution: 'APPROVED',
      resolve_reason: 'ok',
      messages: 'CHANNEL1/0000001,CHANNEL2/0000002',
    });
    expect(decodePluginData(enc)).toEqual(d);
  });

  it('writes reviews_count as empty when 0 and round-trips our keys', () => {
    const d = {
      ...emptyPluginData(),
      recipients: ['c1', 'c2'],
      postIntentAt: 123,
      replyIntent: { index: 1, at: 456 },
      renderedHash: 'abc',
    };
    const enc = encodePluginData(d);
    expect(enc.reviews_count).toBe('');
    expect(enc.mm_recipients).toBe('c1,c2');
    expect(decodePluginData(enc)).toEqual(d);
    expect(pendingChannels({ ...d, messages: [{ channelId: 'c1', postId: 'p' }] })).toEqual(['c2']);
  });

  it('keeps a decided-but-empty recipient list distinct from undecided', () => {
    expect(decodePluginData(encodePluginData({ ...emptyPluginData(), recipients: [] })).recipients).toEqual(
      [],
    );
    expect(decodePluginData(encodePluginData(emptyPluginData())).recipients).toBeUndefined();
  });

  it('reads legacy Mattermost data (channel_id + postID)', () => {
    const d = decodePluginData({ channel_id: 'CH', postID: 'P1', user: 'bob' });
    expect(d.messages).toEqual([{ channelId: 'CH', postId: 'P1' }]);
    expect(d.user).toBe('bob');
  });

  it('reads data written by the upstream plugin (no mm_ keys): already posted', () => {
    const d = decodePluginData({ user: 'u', roles: 'editor', messages: 'C1/P1', resolution: '' });
    expect(d.recipients).toBeUndefined();
    expect(pendingChannels(d)).toEqual([]);
  });

  it('expects every key absent on create', () => {
    const e = expectAbsent();
    expect(Object.values(e).every((v) => v === '')).toBe(true);
    expect(Object.keys(e)).toEqual(expect.arrayContaining(['messages', 'resolution', 'mm_recipients']));
  });

  it('keeps the request fields needed to render after deletion', () => {
    const r = request({
      requestReason: 'r',
      expires: new Date('2030-01-02T03:04:05Z'),
      requestedResources: [{ clusterName: 'c', kind: 'node', name: 'n', subResourceName: '' }],
    });
    const d = { ...emptyPluginData(), ...pluginDataFields(r) };
    expect(d.maxDuration).toBe('2030-01-02T03:04:05Z');
    const back = requestFromPluginData('req-1', decodePluginData(encodePluginData(d)));
    expect(back.requestedResources).toEqual(r.requestedResources);
    expect(back.expires?.toISOString()).toBe('2030-01-02T03:04:05.000Z');
    expect(parseResourceName('/c/kube/n/ns/pod')).toEqual({
      clusterName: 'c',
      kind: 'kube',
      name: 'n',
      subResourceName: 'ns/pod',
    });
  });
});

describe('recipients', () => {
  const map = { editor: ['a@x.com', 'team/chan'], dev: [], '*': ['fallback@x.com'] };
  it('uses the role list, else the "*" list, then suggested reviewers, de-duplicated', () => {
    expect(rawRecipientsFor(map, ['editor'], [])).toEqual(['a@x.com', 'team/chan']);
    expect(rawRecipientsFor(map, ['dev'], [])).toEqual(['fallback@x.com']);
    expect(rawRecipientsFor(map, ['unknown', 'editor'], ['a@x.com', 'r@x.com'])).toEqual([
      'fallback@x.com',
      'a@x.com',
      'team/chan',
      'r@x.com',
    ]);
    expect(rawRecipientsFor({}, ['editor'], [])).toEqual([]);
  });

  it('accepts plain emails only', () => {
    expect(isEmail('reviewer1@example.com')).toBe(true);
    expect(isEmail('Reviewer <r@example.com>')).toBe(false);
    expect(isEmail('team/channel')).toBe(false);
    expect(isEmail('nobody')).toBe(false);
  });

  it('says what a bad recipient looks like', () => {
    expect(recipientFormatProblem('team/channel')).toBeUndefined();
    expect(recipientFormatProblem('a@b.com')).toBeUndefined();
    expect(recipientFormatProblem('a/b/c')).toMatch(/team\/channel/);
    expect(recipientFormatProblem('plain')).toMatch(/user email/);
  });

  it('filters invalid suggested reviewers and reports them', () => {
    const c = chooseRecipients(request({ suggestedReviewers: ['ok@x.com', 'not an email'] }), map, []);
    expect(c.recipients).toEqual(['a@x.com', 'team/chan', 'ok@x.com']);
    expect(c.invalidSuggestedReviewers).toEqual(['not an email']);
  });

  const rule = (over: Partial<AccessMonitoringRule> = {}): AccessMonitoringRule => ({
    name: 'r1',
    subjects: ['access_request'],
    states: [],
    condition: 'access_request.spec.roles.contains("editor")',
    notification: { name: 'mattermost', recipients: ['ops/alerts'] },
    ...over,
  });

  it('a matching Access Monitoring Rule replaces the other sources', () => {
    const c = chooseRecipients(request({ suggestedReviewers: ['s@x.com'] }), map, [rule()]);
    expect(c).toMatchObject({ recipients: ['ops/alerts'], source: 'access_monitoring_rules' });
  });

  it('ignores rules for other plugins, other subjects, non-matching and unparsable rules', () => {
    const rules = [
      rule({ name: 'slack', notification: { name: 'slack', recipients: ['x'] } }),
      rule({ name: 'other', subjects: ['something'] }),
      rule({ name: 'nomatch', condition: 'access_request.spec.roles.contains("db")' }),
      rule({ name: 'bad', condition: 'user.traits["team"].contains("x")' }),
    ];
    const c = chooseRecipients(request(), map, rules);
    expect(c.source).toBe('role_to_recipients');
    expect(c.skippedRules).toEqual([{ name: 'bad', reason: expect.stringMatching(/unsupported variable/) }]);
  });
});

describe('access monitoring rule conditions (supported subset)', () => {
  const input = {
    'access_request.spec.roles': ['editor', 'access'],
    'access_request.spec.suggested_reviewers': ['r@x.com'],
    'access_request.spec.user': 'alice',
    'access_request.spec.request_reason': 'prod fix',
    'access_request.spec.system_annotations': { team: ['dev'] },
    'plugin.spec.name': 'mattermost',
  };
  it.each([
    ['access_request.spec.roles.contains("editor")', true],
    ['access_request.spec.roles.contains("db")', false],
    ['contains_any(access_request.spec.roles, set("db", "access"))', true],
    ['contains_all(access_request.spec.roles, set("editor", "access"))', true],
    ['contains_all(access_request.spec.roles, set("editor", "db"))', false],
    ['access_request.spec.user == "alice" && !is_empty(access_request.spec.suggested_reviewers)', true],
    ['access_request.spec.user != "alice" || plugin.spec.name == "mattermost"', true],
    ['access_request.spec.system_annotations["team"].contains("dev")', true],
    ['(access_request.spec.user == "bob")', false],
    ['equals(access_request.spec.request_reason, "prod fix")', true],
    ['', true],
  ])('%s → %s', (condition, expected) => {
    expect(evaluateRuleCondition(condition, input)).toEqual({ ok: true, value: expected });
  });

  it.each([
    ['access_request.spec.creation_time > "2020"', /unsupported character '>'/],
    ['user.traits["team"].contains("dev")', /unsupported variable 'user.traits'/],
    ['regexp.match(access_request.spec.user, "a.*")', /unsupported/],
    ['access_request.spec.roles.contains("x"', /expected '\)'/],
    ['access_request.spec.user', /true\/false/],
    ['"unterminated', /unterminated string/],
  ])('rejects %s with a clear message', (condition, message) => {
    const r = evaluateRuleCondition(condition, input);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.error).toMatch(message);
  });

  it('checks syntax without input', () => {
    expect(checkRuleCondition('access_request.spec.roles.contains("a")')).toBeUndefined();
    expect(checkRuleCondition('foo.bar')).toMatch(/unsupported variable/);
  });
});

describe('retry decisions', () => {
  const policy = { baseDelayMs: 100, maxDelayMs: 1000, budgetMs: 5000 };
  it('backs off exponentially with jitter, capped', () => {
    expect(backoffDelay(0, policy, () => 1)).toBe(100);
    expect(backoffDelay(3, policy, () => 1)).toBe(800);
    expect(backoffDelay(10, policy, () => 1)).toBe(1000);
    expect(backoffDelay(10, policy, () => 0)).toBe(50);
  });
  it('honours Retry-After, capped, and stops when the budget is spent', () => {
    const limited = new MattermostError('RateLimited', 'slow down', 429, 700);
    expect(nextRetryDelay(limited, 0, 0, policy)).toBe(700);
    expect(nextRetryDelay(new MattermostError('RateLimited', 'x', 429, 60_000), 0, 0, policy)).toBe(1000);
    expect(nextRetryDelay(limited, 0, 4500, policy)).toBeUndefined();
  });
  it('does not retry permanent errors', () => {
    expect(nextRetryDelay(new MattermostError('NotFound', 'x', 404), 0, 0, policy)).toBeUndefined();
    expect(classifyError(new MattermostError('Unavailable', 'x', 503))).toBe('temporary');
    expect(classifyError(new TeleportError('CompareFailed', 'x'))).toBe('conflict');
    expect(classifyError(new TeleportError('AccessDenied', 'x'))).toBe('permanent');
  });
});

describe('work merging and resolution rules', () => {
  const put = (r: AccessRequest) => ({ kind: 'put' as const, request: r, origin: 'event' as const });
  it('never lets an older snapshot replace a newer one; deletion wins', () => {
    const pending = request();
    const approved = request({ state: 'APPROVED' });
    expect(mergeWork(put(approved), { ...put(pending), origin: 'catchup' })).toMatchObject({
      request: approved,
      origin: 'event',
    });
    expect(mergeWork(put(pending), put(approved))).toMatchObject({ request: approved });
    expect(mergeWork(put(approved), { kind: 'delete', origin: 'event' })).toEqual({
      kind: 'delete',
      origin: 'event',
    });
  });
  it('keeps a recorded resolution (upstream) and expires deleted pending requests', () => {
    expect(targetResolution(request({ state: 'APPROVED' }), '')).toEqual({ target: 'APPROVED' });
    expect(targetResolution(undefined, '')).toEqual({ target: 'EXPIRED' });
    expect(targetResolution(undefined, 'APPROVED')).toEqual({ target: 'APPROVED' });
    expect(targetResolution(request({ state: 'DENIED' }), 'APPROVED')).toEqual({
      target: 'APPROVED',
      conflict: 'DENIED',
    });
    expect(targetResolution(request(), 'APPROVED')).toEqual({ target: 'APPROVED' });
  });
});
