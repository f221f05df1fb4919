// Upstream's scenarios (integrations/access/mattermost/testlib/suite.go) against the real test servers.
import { parsePostFields } from '../../../operator/mattermost/render.js';
import { decodePluginData } from '../../../operator/relay/plugindata.js';
import type { WatcherInternals } from '../../../operator/relay/run.js';
import type { PostRecord } from '../../mattermost-server/index.js';
import { REVIEWER1, REVIEWER2, TEAM_CHANNEL, startStack, until, type Stack } from './harness.js';

let stack: Stack;
let relay: WatcherInternals;

async function setup(opts: Parameters<typeof startStack>[0]) {
  stack = await startStack(opts);
  relay = await stack.startRelay();
  await until(() => relay.ready() === undefined, 15_000, 'relay ready');
}

afterEach(async () => {
  await stack?.stop();
});

const fields = (p: PostRecord) => parsePostFields(p.message);
const rootsOf = (id: string) =>
  stack.mattermost.rootPosts().filter((p) => p.props.teleport_request_id === id);
const data = (id: string) => decodePluginData(stack.teleport.pluginData(id) ?? {});

describe('upstream scenarios', () => {
  it('MessagePosting: role recipients + suggested reviewer → 2 posts, 2 recorded messages, truncated reason', async () => {
    await setup({ roleToRecipients: { editor: [REVIEWER1], '*': ['fallback'] } });
    const req = stack.teleport.createRequest({
      user: 'requester-oss@example.com',
      roles: ['editor'],
      suggestedReviewers: [REVIEWER2],
      requestReason: 'because of ' + 'A'.repeat(4000),
    });
    await relay.idle();
    const roots = rootsOf(req.id);
    expect(roots).toHaveLength(2);
    expect(roots.map((p) => p.channelId).sort()).toEqual(
      [stack.dmOf(REVIEWER1), stack.dmOf(REVIEWER2)].sort(),
    );
    expect(data(req.id).messages).toHaveLength(2);
    const f = fields(roots[0]!);
    expect(f['Request ID']).toBe(req.id);
    expect(f.User).toBe('requester-oss@example.com');
    expect(f.Status).toBe('⏳ PENDING');
    expect(f.Reason).toBe('because of ' + 'A'.repeat(489) + ' (truncated)');
  });

  it('Approval, Denial and Expiration edit the same posts', async () => {
    await setup({ roleToRecipients: { editor: [REVIEWER1] } });
    const approved = stack.teleport.createRequest();
    const denied = stack.teleport.createRequest();
    const expired = stack.teleport.createRequest();
    await relay.idle();
    const before = new Map(
      [approved, denied, expired].map((r) => [r.id, rootsOf(r.id).map((p) => p.id)] as const),
    );
    stack.teleport.setState(approved.id, 'APPROVED', 'okay');
    stack.teleport.setState(denied.id, 'DENIED', 'not okay ' + 'A'.repeat(4000));
    stack.teleport.deleteRequest(expired.id);
    await relay.idle();
    for (const r of [approved, denied, expired])
      expect(rootsOf(r.id).map((p) => p.id)).toEqual(before.get(r.id));
    expect(fields(rootsOf(approved.id)[0]!)).toMatchObject({
      Status: '✅ APPROVED',
      'Resolution reason': 'okay',
    });
    expect(fields(rootsOf(denied.id)[0]!)).toMatchObject({
      Status: '❌ DENIED',
      'Resolution reason': 'not okay ' + 'A'.repeat(491) + ' (truncated)',
    });
    expect(fields(rootsOf(expired.id)[0]!).Status).toBe('⌛ EXPIRED');
  });

  it('RecipientsConfig: a team channel and an email → 2 posts', async () => {
    await setup({ roleToRecipients: { '*': [TEAM_CHANNEL, REVIEWER1] } });
    const req = stack.teleport.createRequest();
    await relay.idle();
    expect(
      rootsOf(req.id)
        .map((p) => p.channelId)
        .sort(),
    ).toEqual([stack.teamChannelId, stack.dmOf(REVIEWER1)].sort());
  });

  it('ReviewComments: each review is a thread reply', async () => {
    await setup({
      roleToRecipients: { editor: [REVIEWER1] },
      teleport: { approveThreshold: 3, denyThreshold: 3 },
    });
    const req = stack.teleport.createRequest();
    await relay.idle();
    stack.teleport.submitReview(req.id, { author: REVIEWER1, proposedState: 'APPROVED', reason: 'okay' });
    stack.teleport.submitReview(req.id, { author: REVIEWER2, proposedState: 'DENIED', reason: 'not okay' });
    await relay.idle();
    const [root] = rootsOf(req.id);
    const replies = stack.mattermost.repliesTo(root!.id);
    expect(replies).toHaveLength(2);
    expect(replies[0]!.message).toMatch(/reviewer1@example\.com.* reviewed the request/);
    expect(fields(replies[0]!)).toMatchObject({ Resolution: '✅ APPROVED', Reason: 'okay' });
    expect(fields(replies[1]!)).toMatchObject({ Resolution: '❌ DENIED', Reason: 'not okay' });
  });

  it.each([
    ['ApprovalByReview', 'APPROVED' as const, '✅ APPROVED', 'finally okay'],
    ['DenialByReview', 'DENIED' as const, '❌ DENIED', 'finally not okay'],
  ])('%s: two reviews → two replies, then the resolution', async (_name, state, shown, reason) => {
    await setup({
      roleToRecipients: { editor: [REVIEWER1] },
      teleport: { approveThreshold: 2, denyThreshold: 2 },
    });
    const req = stack.teleport.createRequest();
    await relay.idle();
    stack.teleport.submitReview(req.id, { author: REVIEWER1, proposedState: state, reason: 'okay' });
    stack.teleport.submitReview(req.id, { author: REVIEWER2, proposedState: state, reason });
    await relay.idle();
    const [root] = rootsOf(req.id);
    expect(stack.mattermost.repliesTo(root!.id)).toHaveLength(2);
    expect(fields(root!)).toMatchObject({ Status: shown, 'Resolution reason': reason });
  });

  it('Race: many concurrent requests with 2 reviewers each → exact counts', async () => {
    await setup({ roleToRecipients: { editor: [] }, teleport: { approveThreshold: 2 } });
    const n = 40;
    const reqs = Array.from({ length: n }, () =>
      stack.teleport.createRequest({ suggestedReviewers: [REVIEWER1, REVIEWER2] }),
    );
    await relay.idle();
    for (const r of reqs) stack.teleport.submitReview(r.id, { author: REVIEWER1, proposedState: 'APPROVED' });
    await relay.idle();
    for (const r of reqs) stack.teleport.submitReview(r.id, { author: REVIEWER2, proposedState: 'APPROVED' });
    await relay.idle();
    const roots = stack.mattermost.rootPosts();
    expect(roots).toHaveLength(2 * n);
    for (const root of roots) {
      expect(stack.mattermost.repliesTo(root.id)).toHaveLength(2);
      // Reviews do not change the root text; the resolution edits it exactly once.
      expect(root.history).toHaveLength(1);
      expect(fields(root).Status).toBe('✅ APPROVED');
    }
    expect(stack.mattermost.posts()).toHaveLength(2 * n * 3);
  });
});
