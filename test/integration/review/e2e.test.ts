// Native reviews end to end through both test servers: a click in Mattermost becomes the reviewer's own
// review in Teleport (on behalf, checked against the reviewer's rights), the thread reply and the post edit
// follow through the watch, and every refusal shows its ephemeral text and leaves Teleport untouched.
import { EPHEMERAL_TEXT } from '../../../operator/review/handler.js';
import { SIGNING_KEY, startReviewStack, until, type ReviewStack } from './harness.js';

let s: ReviewStack;

beforeAll(async () => {
  s = await startReviewStack({ allowEmail: true });
});
afterAll(async () => {
  await s.stop();
});
afterEach(() => s.teleport.setThresholds(1, 1));

const stored = (postId: string) => s.mattermost.store.posts.get(postId)!;
const actionIds = (postId: string): string[] =>
  ((stored(postId).props.attachments as Array<{ actions: Array<{ id: string }> }> | undefined) ?? []).flatMap(
    (a) => a.actions.map((x) => x.id),
  );
const reviewsOf = (id: string) => s.teleport.getRequest(id)?.reviews ?? [];

/** Posts the body straight to our listener, as anyone on the network could. */
async function direct(body: unknown): Promise<string> {
  const res = await fetch(s.callbackUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { ephemeral_text: string }).ephemeral_text;
}

/** A body as Mattermost would send it for `user` clicking `postId`, with the stored context. */
function bodyFor(user: string, postId: string, action = 'approve', triggerAt = Date.now()) {
  const post = stored(postId);
  type Action = { id: string; integration: { context: Record<string, string> } };
  const actions = (post.props.attachments as Array<{ actions: Action[] }>)[0]!.actions;
  const context = structuredClone(actions.find((a) => a.id === action)!.integration.context);
  return {
    user_id: s.mm[user]!.id,
    user_name: user,
    channel_id: post.channelId,
    post_id: postId,
    trigger_id: s.mattermost.signTriggerId(s.mm[user]!.id, triggerAt).triggerId,
    type: 'button',
    data_source: '',
    context,
  };
}

test("Approve: the review is the reviewer's own, on behalf; reply, APPROVED and no buttons follow", async () => {
  const { request, postId } = await s.requestWithPost();
  expect(actionIds(postId)).toEqual(['approve', 'deny']);
  // Clients never see the integration (url and context).
  const seen = await fetch(`${s.mattermost.url}/api/v4/channels/${s.channelId}/posts`, {
    headers: { Authorization: `Bearer ${s.mm.bob!.token}` },
  }).then((r) => r.text());
  expect(seen).not.toContain('integration');
  expect(seen).not.toContain(s.callbackUrl);

  const res = await s.click('bob', postId, 'approve');
  expect(res).toEqual({
    status: 200,
    body: { status: 'OK', trigger_id: expect.stringMatching(/^[a-z0-9]{26}$/) },
  });
  expect(s.lastEphemeral('bob')).toBe(EPHEMERAL_TEXT.approved);
  expect(reviewsOf(request.id)).toEqual([
    expect.objectContaining({
      author: 'bob',
      proposedState: 'APPROVED',
      reason: 'via Mattermost',
      submittedBy: 'access-plugin',
      onBehalfOfAuthor: true,
    }),
  ]);
  await until(
    () => stored(postId).message.includes('APPROVED') && actionIds(postId).length === 0,
    10_000,
    'APPROVED',
  );
  await until(() => s.mattermost.repliesTo(postId).length === 1, 10_000, 'the thread reply');
  expect(s.mattermost.repliesTo(postId)[0]!.message).toContain('bob');
});

test('Deny likewise', async () => {
  const { request, postId } = await s.requestWithPost();
  await s.click('carol', postId, 'deny');
  expect(s.lastEphemeral('carol')).toBe(EPHEMERAL_TEXT.denied);
  expect(reviewsOf(request.id)).toEqual([
    expect.objectContaining({ author: 'carol', proposedState: 'DENIED' }),
  ]);
  await until(
    () => stored(postId).message.includes('DENIED') && actionIds(postId).length === 0,
    10_000,
    'DENIED',
  );
});

test('multi-threshold: PENDING, buttons kept, until the threshold is met', async () => {
  s.teleport.setThresholds(2, 2);
  const { request, postId } = await s.requestWithPost();
  await s.click('bob', postId, 'approve');
  await until(() => s.mattermost.repliesTo(postId).length === 1, 10_000, 'first reply');
  expect(s.teleport.getRequest(request.id)!.state).toBe('PENDING');
  expect(actionIds(postId)).toEqual(['approve', 'deny']);
  await s.click('carol', postId, 'approve');
  expect(s.lastEphemeral('carol')).toBe(EPHEMERAL_TEXT.approved);
  expect(s.teleport.getRequest(request.id)!.state).toBe('APPROVED');
  await until(() => actionIds(postId).length === 0, 10_000, 'buttons removed');
});

test('refusals through Mattermost, each with its ephemeral text and no review', async () => {
  s.teleport.setThresholds(5, 5);
  const { request, postId } = await s.requestWithPost();
  const cases: Array<[string, keyof typeof EPHEMERAL_TEXT]> = [
    ['erin', 'no_user'],
    ['twin', 'ambiguous_user'],
    ['dave', 'no_permission'],
    ['alice', 'no_permission'], // the requester reviewing her own request
  ];
  for (const [user, outcome] of cases) {
    await s.click(user, postId, 'approve');
    expect([user, s.lastEphemeral(user)]).toEqual([user, EPHEMERAL_TEXT[outcome]]);
  }
  // The email fallback (allowed in this stack): frank's email is a Teleport user name.
  await s.click('frank', postId, 'approve');
  expect(s.lastEphemeral('frank')).toBe(EPHEMERAL_TEXT.approved);
  await s.click('frank', postId, 'deny');
  expect(s.lastEphemeral('frank')).toBe(EPHEMERAL_TEXT.already_reviewed);
  expect(reviewsOf(request.id).map((r) => r.author)).toEqual(['frank@example.com']);
  // A user outside the channel never reaches us; an unknown action id is Mattermost's 404.
  expect((await s.click('outsider', postId, 'approve')).status).toBe(403);
  expect((await s.click('bob', postId, 'approve2')).status).toBe(404);
  expect((await s.click('bob', postId, 'app-rove')).status).toBe(404);
});

test('already resolved, long-term and a Teleport without the feature', async () => {
  const { request, postId } = await s.requestWithPost();
  const body = bodyFor('bob', postId);
  s.teleport.setState(request.id, 'DENIED', 'no');
  expect(await direct(body)).toBe(EPHEMERAL_TEXT.resolved);

  const long = await s.requestWithPost({ requestKind: 'LONG_TERM' });
  expect(actionIds(long.postId)).toEqual([]); // no buttons on long-term requests
  const short = await s.requestWithPost();
  // A forged click carrying the long-term request id: context re-signed is impossible without the key,
  // so take a validly signed context of a long-term request as if the buttons had been shown.
  const { signContext } = await import('../../../operator/review/context.js');
  const forged = bodyFor('bob', short.postId);
  forged.context = {
    ...signContext(Buffer.from(SIGNING_KEY), long.request.id, 'approve', s.channelId, Date.now()),
  };
  forged.post_id = long.postId;
  expect(await direct(forged)).toBe(EPHEMERAL_TEXT.long_term);
  expect(reviewsOf(long.request.id)).toHaveLength(0);

  s.teleport.reviews.onBehalfSupported = false;
  try {
    await s.click('bob', short.postId, 'approve');
    expect(s.lastEphemeral('bob')).toBe(EPHEMERAL_TEXT.unsupported);
    expect(reviewsOf(short.request.id)).toHaveLength(0);
  } finally {
    s.teleport.reviews.onBehalfSupported = true;
  }
});

test('forged, foreign, repeated, replayed and misplaced clicks are refused without a Teleport call', async () => {
  const { request, postId } = await s.requestWithPost();
  const other = await s.requestWithPost();
  const submits = () => s.teleport.callCount('SubmitAccessReview');
  const before = submits();

  const altered = bodyFor('bob', postId);
  altered.context.request_id = other.request.id;
  expect(await direct(altered)).toBe(EPHEMERAL_TEXT.forged_context);
  const flipped = bodyFor('bob', postId);
  flipped.context.action = 'deny';
  expect(await direct(flipped)).toBe(EPHEMERAL_TEXT.forged_context);

  const foreign = bodyFor('bob', postId);
  foreign.trigger_id = s.mattermost.signTriggerId(s.mm.carol!.id).triggerId; // another user's trigger
  expect(await direct(foreign)).toBe(EPHEMERAL_TEXT.unverified);
  const { generateKeyPairSync, sign } = await import('node:crypto');
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const prefix = `abcdefghijklmnopqrstuvwxyz:${s.mm.bob!.id}:${Date.now()}:`;
  const selfSigned = bodyFor('bob', postId);
  selfSigned.trigger_id = Buffer.from(
    prefix + sign('sha256', Buffer.from(prefix), { key: privateKey, dsaEncoding: 'der' }).toString('base64'),
  ).toString('base64');
  expect(await direct(selfSigned)).toBe(EPHEMERAL_TEXT.unverified);
  const unsigned = bodyFor('bob', postId);
  unsigned.trigger_id = 'abcdefghijklmnopqrstuvwxyz';
  expect(await direct(unsigned)).toBe(EPHEMERAL_TEXT.unverified);
  expect(await direct(bodyFor('bob', postId, 'approve', Date.now() - 60_000))).toBe(
    EPHEMERAL_TEXT.expired_click,
  );

  const misplaced = bodyFor('bob', postId);
  misplaced.post_id = other.postId;
  expect(await direct(misplaced)).toBe(EPHEMERAL_TEXT.not_our_post);
  const otherChannel = bodyFor('bob', postId);
  otherChannel.channel_id = 'x'.repeat(26);
  expect(await direct(otherChannel)).toBe(EPHEMERAL_TEXT.not_our_post);
  expect(submits()).toBe(before);

  // A real click, then the same callback body again (captured on the wire): refused as repeated.
  await s.click('bob', postId, 'approve');
  expect(s.lastEphemeral('bob')).toBe(EPHEMERAL_TEXT.approved);
  const captured = JSON.parse(s.mattermost.callbacks().at(-1)!.body);
  expect(await direct(captured)).toBe(EPHEMERAL_TEXT.repeated);
  expect(reviewsOf(request.id)).toHaveLength(1);
});

test('the callback host must be allowed in AllowedUntrustedInternalConnections', async () => {
  const { request, postId } = await s.requestWithPost();
  s.mattermost.setActionSettings({ allowedUntrustedInternalConnections: 'localhost' });
  try {
    const res = await s.click('bob', postId, 'approve');
    expect(res.status).toBe(400);
    expect(res.body.id).toBe('api.post.do_action.action_integration.app_error');
    expect(reviewsOf(request.id)).toHaveLength(0);
  } finally {
    s.mattermost.setActionSettings({ allowedUntrustedInternalConnections: '127.0.0.1' });
  }
});

test('Teleport unreachable: the reviewer is told to retry, and a retry works', async () => {
  const { status } = await import('@grpc/grpc-js');
  const { request, postId } = await s.requestWithPost();
  s.teleport.failNext('SubmitAccessReview', status.UNAVAILABLE, 'connection refused');
  await s.click('carol', postId, 'deny');
  expect(s.lastEphemeral('carol')).toBe(EPHEMERAL_TEXT.unavailable);
  expect(reviewsOf(request.id)).toHaveLength(0);
  await s.click('carol', postId, 'deny');
  expect(s.lastEphemeral('carol')).toBe(EPHEMERAL_TEXT.denied);
});

test('a button signed longer ago than the bound is refused', async () => {
  const { signContext } = await import('../../../operator/review/context.js');
  const { request, postId } = await s.requestWithPost();
  const old = bodyFor('bob', postId);
  old.context = {
    ...signContext(
      Buffer.from(SIGNING_KEY),
      request.id,
      'approve',
      s.channelId,
      Date.now() - 9 * 24 * 3600_000,
    ),
  };
  expect(await direct(old)).toBe(EPHEMERAL_TEXT.stale_button);
  expect(reviewsOf(request.id)).toHaveLength(0);
});

test('a validly signed context with an action we do not know is refused', async () => {
  const { signContext } = await import('../../../operator/review/context.js');
  const { request, postId } = await s.requestWithPost();
  const odd = bodyFor('bob', postId);
  odd.context = {
    ...signContext(Buffer.from(SIGNING_KEY), request.id, 'promote' as never, s.channelId, Date.now()),
  };
  expect(await direct(odd)).toBe(EPHEMERAL_TEXT.unknown_action);
  expect(reviewsOf(request.id)).toHaveLength(0);
});
