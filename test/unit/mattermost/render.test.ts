import {
  MAX_POST_RUNES,
  TRUNCATED_MARK,
  formatResource,
  formatTime,
  inlineValue,
  parsePostFields,
  reasonField,
  renderRequestPost,
  renderRequesterNotice,
  renderReviewReply,
  requestLink,
  runeLength,
  type RequestView,
  type ResolutionTag,
} from '../../../operator/mattermost/render.js';
import type { AccessRequest, AccessReview } from '../../../operator/teleport/api.js';
import { layoutProblems, mentionsIn, splitCode } from './markdown-safety.js';

const ID = '0b8c3d6e-1f2a-4b5c-9d8e-7f6a5b4c3d2e';

function request(over: Partial<AccessRequest> = {}): AccessRequest {
  return {
    id: ID,
    user: 'requester1@example.com',
    roles: ['editor'],
    state: 'PENDING',
    created: new Date('2026-11-23T10:00:00Z'),
    expires: undefined,
    resourceExpires: undefined,
    requestReason: 'because of reasons',
    resolveReason: '',
    reviews: [],
    suggestedReviewers: [],
    requestedResources: [],
    systemAnnotations: {},
    loginHint: '',
    ...over,
  };
}

function view(
  over: Partial<AccessRequest> = {},
  tag: ResolutionTag = 'PENDING',
  reason?: string,
): RequestView {
  return { request: request(over), resolution: { tag, reason } };
}

function review(over: Partial<AccessReview> = {}): AccessReview {
  return {
    author: 'reviewer1@example.com',
    roles: ['reviewer'],
    proposedState: 'APPROVED',
    reason: 'okay',
    created: new Date('2026-01-02T15:04:05Z'),
    ...over,
  };
}

describe('renderRequestPost: upstream fields', () => {
  it('renders a pending request with the header, the fields and the tsh commands', () => {
    const text = renderRequestPost(view());
    expect(text.split('\n')[0]).toBe('*You have new pending request to review!*');
    expect(parsePostFields(text)).toEqual({
      User: 'requester1@example.com',
      Roles: 'editor',
      'Request ID': ID,
      Reason: 'because of reasons',
      Status: '⏳ PENDING',
      Approve: `tsh request review --approve ${ID}`,
      Deny: `tsh request review --deny ${ID}`,
    });
    expect(text).toContain(`**Request ID**: ${ID}\n`);
    expect(layoutProblems(text)).toEqual([]);
  });

  it('matches the upstream field regex for every field line', () => {
    const text = renderRequestPost(view({}, 'APPROVED', 'okay'));
    const fieldLines = text.split('\n').filter((l) => l.startsWith('**'));
    for (const line of fieldLines) expect(line).toMatch(/^\*\*([a-zA-Z ]+)\*\*: +(.+)$/);
  });

  it('links to the web UI instead of the tsh commands when the cluster has advanced workflows', () => {
    const text = renderRequestPost({ ...view(), webProxyAddr: 'teleport.example.com:443' });
    const link = `https://teleport.example.com:443/web/requests/${ID}`;
    expect(text).toContain(`**Link**: [${link}](${link})`);
    expect(text).not.toContain('tsh request review');
    expect(layoutProblems(text, 'teleport.example.com:443')).toEqual([]);
  });

  it.each<[ResolutionTag, string]>([
    ['APPROVED', '✅ APPROVED'],
    ['DENIED', '❌ DENIED'],
    ['EXPIRED', '⌛ EXPIRED'],
    ['PROMOTED', '⏫ PROMOTED'],
  ])('renders %s with its emoji, no pending header and no tsh commands', (tag, status) => {
    const text = renderRequestPost(view({}, tag));
    expect(parsePostFields(text).Status).toBe(status);
    expect(text).not.toContain('pending request');
    expect(text).not.toContain('tsh request review');
    expect(layoutProblems(text)).toEqual([]);
  });

  it('shows the resolution reason and, for PROMOTED, the access list title', () => {
    const approved = parsePostFields(renderRequestPost(view({}, 'APPROVED', 'okay')));
    expect(approved['Resolution reason']).toBe('okay');
    const promoted = renderRequestPost({
      request: request(),
      resolution: { tag: 'PROMOTED', reason: 'use the list', promotedAccessListTitle: 'Prod access' },
    });
    expect(parsePostFields(promoted)).toMatchObject({
      Status: '⏫ PROMOTED',
      'Access list': 'Prod access',
      'Resolution reason': 'use the list',
    });
  });

  it('omits an empty request reason like upstream', () => {
    const text = renderRequestPost(view({ requestReason: '   ' }));
    expect(parsePostFields(text).Reason).toBeUndefined();
  });

  it('shows requested resources and both expiries', () => {
    const text = renderRequestPost(
      view({
        requestedResources: [
          { clusterName: 'root', kind: 'node', name: 'db-1', subResourceName: '' },
          { clusterName: 'root', kind: 'kube_cluster', name: 'prod', subResourceName: 'default/pod' },
        ],
        resourceExpires: new Date('2026-11-23T11:00:00Z'),
        expires: new Date('2026-11-23T18:30:00Z'),
      }),
    );
    const fields = parsePostFields(text);
    expect(fields.Resources).toBe('/root/node/db-1, /root/kube_cluster/prod/default/pod');
    expect(fields['Request expires']).toBe('23 Nov 26 11:00 UTC');
    expect(fields['Access expires']).toBe('23 Nov 26 18:30 UTC');
    // Once resolved, only the access expiry stays relevant.
    const resolved = parsePostFields(
      renderRequestPost(view({ resourceExpires: new Date('2026-11-23T11:00:00Z') }, 'APPROVED')),
    );
    expect(resolved['Request expires']).toBeUndefined();
  });

  it('ignores Go zero times and invalid dates', () => {
    const text = renderRequestPost(
      view({ expires: new Date('0001-01-01T00:00:00Z'), resourceExpires: new Date(NaN) }),
    );
    expect(text).not.toContain('expires');
  });
});

describe('reason truncation (upstream scenarios)', () => {
  it('cuts a request reason at 500 runes and marks it', () => {
    const text = renderRequestPost(view({ requestReason: 'because of ' + 'A'.repeat(4000) }));
    expect(parsePostFields(text).Reason).toBe('because of ' + 'A'.repeat(489) + TRUNCATED_MARK);
    expect(layoutProblems(text)).toEqual([]);
  });

  it('cuts a resolution reason at 500 runes and marks it', () => {
    const text = renderRequestPost(view({}, 'DENIED', 'not okay ' + 'A'.repeat(4000)));
    expect(parsePostFields(text)['Resolution reason']).toBe('not okay ' + 'A'.repeat(491) + TRUNCATED_MARK);
  });

  it('counts code points, not UTF-16 units, and never splits a surrogate pair', () => {
    const text = renderRequestPost(view({ requestReason: '😀'.repeat(600) }));
    const reason = parsePostFields(text).Reason as string;
    expect(reason).toBe('😀'.repeat(500) + TRUNCATED_MARK);
    expect(reason).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });

  it('keeps the truncation mark outside the code so a user cannot forge or hide it', () => {
    const forged = renderRequestPost(view({ requestReason: 'short (truncated)' }));
    expect(forged).toContain('**Reason**: `short (truncated)`\n');
    const long = renderRequestPost(view({ requestReason: 'x'.repeat(600) }));
    expect(long).toMatch(/\*\*Reason\*\*: `x{500}` \(truncated\)/);
    const block = renderRequestPost(view({ requestReason: 'line\n'.repeat(200) }));
    expect(block).toContain('\n```\n_(truncated)_');
    expect(layoutProblems(block)).toEqual([]);
  });

  it('keeps multi-line reasons as a fenced block on their own lines', () => {
    const text = renderRequestPost(view({ requestReason: 'first line\nsecond line' }));
    expect(text).toContain('**Reason**:\n```text\nfirst line\nsecond line\n```\n');
    expect(parsePostFields(text).Reason).toBe('first line\nsecond line');
  });
});

// Each string tries one way to notify people or change the layout.
const HOSTILE = [
  '@all',
  '@channel please look',
  '@here',
  '@ALL',
  '@channel.',
  '\\@channel',
  'ping @alice and @bob.smith',
  'hey@here',
  '@\u200Ball',
  'x\n# Heading',
  '# Heading',
  'text\n---',
  'text\n===',
  '***',
  '> quoted @all',
  '- list @all',
  '1. numbered',
  '    indented code',
  '\tindented',
  '```\n@all\n```',
  '```',
  '~~~\n@here',
  '`@all`',
  '``@here``',
  '` `` ``` ```` @channel',
  'a` @all `b',
  '`',
  '<img src=x onerror=alert(1)>',
  '<!-- comment --> @all',
  '[click me](https://evil.example) @here',
  '![pixel](https://evil.example/x.png)',
  '| a | b |\n|---|---|\n| @all | x |',
  '~town-square',
  '#hashtag @channel',
  ':smile: :+1:',
  '**bold** _em_ ~~strike~~',
  'a\r\n@here',
  'a\u2028@here',
  'a\u0085@here',
  '\u202Eevil\u202C @all',
  'nul\u0000byte @all',
  'https://evil.example/@all',
  '😀 @channel 😀',
  ' \n \n@all\n ',
];

describe('hostile input in every user-controlled field', () => {
  const check = (text: string) => {
    expect(layoutProblems(text)).toEqual([]);
    expect(splitCode(text).problems).toEqual([]);
  };

  it.each(HOSTILE)('request reason %j', (s) => {
    const text = renderRequestPost(view({ requestReason: s }));
    check(text);
  });

  it.each(HOSTILE)('resolution reason %j', (s) => {
    check(renderRequestPost(view({}, 'DENIED', s)));
    check(renderRequesterNotice(view({}, 'DENIED', s)));
  });

  it.each(HOSTILE)('user, roles, resources and access list %j', (s) => {
    const v: RequestView = {
      request: request({
        user: s,
        roles: [s, 'editor', s],
        requestedResources: [{ clusterName: s, kind: 'node', name: s, subResourceName: s }],
      }),
      resolution: { tag: 'PROMOTED', reason: s, promotedAccessListTitle: s },
    };
    check(renderRequestPost(v));
    check(renderRequestPost({ ...v, resolution: { tag: 'PENDING' } }));
    check(renderRequesterNotice(v));
  });

  it.each(HOSTILE)('review author, reason and access list %j', (s) => {
    check(renderReviewReply(review({ author: s, reason: s, promotedAccessListTitle: s })));
  });

  it.each(HOSTILE)('request id %j (ids come from Teleport, but are still not trusted)', (s) => {
    check(renderRequestPost({ ...view({ id: s }), webProxyAddr: 'proxy.example.com' }));
  });

  it('keeps the user text readable: the visible value equals the input for ordinary hostile strings', () => {
    for (const s of ['@all', '@channel please look', '`@all`', 'a` @all `b', '<b>x</b>', '[x](y)']) {
      expect(parsePostFields(renderRequestPost(view({ requestReason: s }))).Reason).toBe(s);
      expect(parsePostFields(renderRequestPost(view({ user: s }))).User).toBe(s);
    }
    const multi = '```\n@all\n```';
    expect(parsePostFields(renderRequestPost(view({ requestReason: multi }))).Reason).toBe(multi);
  });

  it('the mention scanner used above does find mentions in plain text (sanity check)', () => {
    expect(mentionsIn('hi @all.')).toEqual(['@all']);
    expect(mentionsIn('hi @alice')).toEqual(['@alice']);
    expect(mentionsIn('mail me@example.com')).toEqual([]);
    expect(layoutProblems('**Reason**: @here')).not.toEqual([]);
    expect(layoutProblems('**Reason**: `x`\n# title')).not.toEqual([]);
    expect(layoutProblems('**Reason**:\n```\n@all')).toContain('a code fence is never closed');
  });

  it('a proxy address that could inject markdown is not linked', () => {
    expect(requestLink('evil.example)[x](y', ID)).toBeUndefined();
    expect(requestLink('a b', ID)).toBeUndefined();
    expect(requestLink('proxy.example.com:3080', ID)).toBe(
      `https://proxy.example.com:3080/web/requests/${ID}`,
    );
    expect(requestLink('https://proxy.example.com/', ID)).toBe(
      `https://proxy.example.com/web/requests/${ID}`,
    );
    expect(requestLink('[::1]:443', ID)).toBe(`https://[::1]:443/web/requests/${ID}`);
    expect(requestLink('proxy.example.com', 'x)(y')).toBeUndefined();
    expect(requestLink(undefined, ID)).toBeUndefined();
  });
});

describe('length bounds', () => {
  it('keeps the worst case of every field at once within the post limit, with truncation marked', () => {
    const huge = '😀`@'.repeat(5000);
    const v: RequestView = {
      request: request({
        id: 'f'.repeat(64),
        user: huge,
        roles: Array.from({ length: 500 }, (_, i) => `role-${i}-${huge}`),
        requestedResources: Array.from({ length: 500 }, () => ({
          clusterName: huge,
          kind: huge,
          name: huge,
          subResourceName: huge,
        })),
        requestReason: huge,
        resourceExpires: new Date('2026-11-23T11:00:00Z'),
        expires: new Date('2026-11-23T18:30:00Z'),
      }),
      resolution: { tag: 'PROMOTED', reason: huge, promotedAccessListTitle: huge },
      webProxyAddr: 'a'.repeat(200),
    };
    for (const tag of ['PENDING', 'PROMOTED'] as const) {
      const text = renderRequestPost({ ...v, resolution: { ...v.resolution, tag } });
      expect(runeLength(text)).toBeLessThanOrEqual(MAX_POST_RUNES);
      expect(text).toContain('(truncated)');
      expect(text).toMatch(/and \d+ more/);
      expect(layoutProblems(text, 'a'.repeat(200))).toEqual([]);
      expect(text).not.toContain("fit Mattermost's limit");
    }
    const multiLine = renderRequestPost({
      ...v,
      request: { ...v.request, requestReason: 'line @all\n'.repeat(3000) },
      resolution: { ...v.resolution, reason: '\n'.repeat(3) + '```\n'.repeat(3000) },
    });
    expect(runeLength(multiLine)).toBeLessThanOrEqual(MAX_POST_RUNES);
    expect(layoutProblems(multiLine, 'a'.repeat(200))).toEqual([]);
    const reply = renderReviewReply(review({ author: huge, reason: huge, promotedAccessListTitle: huge }));
    expect(runeLength(reply)).toBeLessThanOrEqual(MAX_POST_RUNES);
    const notice = renderRequesterNotice(v);
    expect(runeLength(notice)).toBeLessThanOrEqual(MAX_POST_RUNES);
  });

  it('shows as many roles as fit and counts the rest', () => {
    const roles = Array.from({ length: 300 }, (_, i) => `role-number-${i}`);
    const text = renderRequestPost(view({ roles }));
    const shown = parsePostFields(text).Roles as string;
    const m = /and (\d+) more$/.exec(shown);
    expect(m).not.toBeNull();
    const listed = shown.split(', ').filter((p) => p.startsWith('role-number-'));
    expect(listed.length + Number(m![1])).toBe(300);
    expect(listed[0]).toBe('role-number-0');
  });

  it('truncates a long name and marks it', () => {
    expect(inlineValue('x'.repeat(150))).toBe('`' + 'x'.repeat(100) + '`' + TRUNCATED_MARK);
    expect(inlineValue('')).toBe('(empty)');
  });
});

describe('renderReviewReply', () => {
  it('names the author, the proposed state with emoji, the reason and the time (RFC822, UTC)', () => {
    const text = renderReviewReply(review());
    expect(text.split('\n')[0]).toBe('`reviewer1@example.com` reviewed the request at 02 Jan 26 15:04 UTC.');
    expect(parsePostFields(text)).toEqual({ Resolution: '✅ APPROVED', Reason: 'okay' });
  });

  it('renders denials and promotions, and a review without reason or time', () => {
    expect(parsePostFields(renderReviewReply(review({ proposedState: 'DENIED' }))).Resolution).toBe(
      '❌ DENIED',
    );
    const promoted = renderReviewReply(
      review({ proposedState: 'PROMOTED', promotedAccessListTitle: 'Prod', reason: '', created: undefined }),
    );
    expect(promoted.split('\n')[0]).toBe('`reviewer1@example.com` reviewed the request.');
    expect(parsePostFields(promoted)).toEqual({ Resolution: '⏫ PROMOTED', 'Access list': 'Prod' });
  });

  it('truncates the review reason at 500 runes', () => {
    const text = renderReviewReply(review({ reason: 'r'.repeat(900) }));
    expect(parsePostFields(text).Reason).toBe('r'.repeat(500) + TRUNCATED_MARK);
  });
});

describe('renderRequesterNotice', () => {
  it('tells the requester the outcome, the roles, the reason and the access expiry', () => {
    const text = renderRequesterNotice({
      ...view({ expires: new Date('2026-11-23T18:30:00Z') }, 'APPROVED', 'enjoy'),
      webProxyAddr: 'proxy.example.com',
    });
    expect(text.split('\n')[0]).toBe('✅ Your access request was approved.');
    expect(parsePostFields(text)).toMatchObject({
      Roles: 'editor',
      'Request ID': ID,
      Status: '✅ APPROVED',
      'Resolution reason': 'enjoy',
      'Access expires': '23 Nov 26 18:30 UTC',
      Link: `[https://proxy.example.com/web/requests/${ID}](https://proxy.example.com/web/requests/${ID})`,
    });
    expect(layoutProblems(text, 'proxy.example.com')).toEqual([]);
  });

  it.each<[ResolutionTag, string]>([
    ['DENIED', '❌ Your access request was denied.'],
    ['EXPIRED', '⌛ Your access request expired before it was resolved.'],
    ['PROMOTED', '⏫ Your access request was promoted to an access list.'],
  ])('%s', (tag, first) => {
    expect(renderRequesterNotice(view({}, tag)).split('\n')[0]).toBe(first);
  });
});

describe('helpers', () => {
  it('formatTime uses Go RFC822 in UTC', () => {
    expect(formatTime(new Date('2006-01-02T15:04:05Z'))).toBe('02 Jan 06 15:04 UTC');
    expect(formatTime(new Date('2026-12-31T23:59:59Z'))).toBe('31 Dec 26 23:59 UTC');
  });

  it('formatResource uses the tsh --resource form', () => {
    expect(formatResource({ clusterName: 'c', kind: 'db', name: 'pg', subResourceName: '' })).toBe(
      '/c/db/pg',
    );
    expect(
      formatResource({ clusterName: 'c', kind: 'kube_cluster', name: 'k', subResourceName: 'ns/p' }),
    ).toBe('/c/kube_cluster/k/ns/p');
  });

  it('reasonField renders a one-line reason inline and a blank one as (empty)', () => {
    expect(reasonField('Reason', '  okay  ')).toBe('**Reason**: `okay`');
    expect(reasonField('Reason', '   ')).toBe('**Reason**: (empty)');
    expect(reasonField('Reason', 'a`b')).toBe('**Reason**: `` a`\u200Bb ``');
  });

  it('runeLength counts code points', () => {
    expect(runeLength('😀a')).toBe(2);
    expect('😀a'.length).toBe(3);
  });
});
