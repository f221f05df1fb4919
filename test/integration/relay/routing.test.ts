// Access Monitoring Rules, the requester's direct message, reconnects and metrics, on the real servers.
import { REQUESTER, REVIEWER1, TEAM_CHANNEL, startStack, until, type Stack } from './harness.js';

let stack: Stack;
afterEach(async () => {
  await stack?.stop();
});

const rootsOf = (id: string) =>
  stack.mattermost.rootPosts().filter((p) => p.props.teleport_request_id === id);

describe('routing and operations', () => {
  it('a matching Access Monitoring Rule replaces role_to_recipients; others fall back', async () => {
    stack = await startStack({ roleToRecipients: { '*': [REVIEWER1] } });
    stack.teleport.putRule({
      name: 'db-to-channel',
      subjects: ['access_request'],
      states: [],
      condition: 'contains_any(access_request.spec.roles, set("db-admin"))',
      notification: { name: 'mattermost', recipients: [TEAM_CHANNEL] },
    });
    stack.teleport.putRule({
      name: 'unsupported',
      subjects: ['access_request'],
      states: [],
      condition: 'access_request.spec.creation_time.after(now())',
      notification: { name: 'mattermost', recipients: ['nobody@example.com'] },
    });
    const relay = await stack.startRelay();
    await until(() => relay.ready() === undefined);
    const db = stack.teleport.createRequest({ roles: ['db-admin'], suggestedReviewers: [REVIEWER1] });
    const other = stack.teleport.createRequest({ roles: ['editor'] });
    await relay.idle();
    expect(rootsOf(db.id).map((p) => p.channelId)).toEqual([stack.teamChannelId]);
    expect(rootsOf(other.id).map((p) => p.channelId)).toEqual([stack.dmOf(REVIEWER1)]);
  });

  it('direct-messages the requester once when the request is resolved (notify_requester)', async () => {
    stack = await startStack({ roleToRecipients: { '*': [TEAM_CHANNEL] }, notifyRequester: true });
    const relay = await stack.startRelay();
    await until(() => relay.ready() === undefined);
    const req = stack.teleport.createRequest({ user: REQUESTER });
    await relay.idle();
    stack.teleport.setState(req.id, 'APPROVED', 'enjoy');
    await relay.idle();
    const dm = stack.dmOf(REQUESTER);
    expect(dm).toBeDefined();
    const notices = stack.mattermost.postsIn(dm!);
    expect(notices).toHaveLength(1);
    expect(notices[0]!.message).toMatch(/was approved/);
  });

  it('after a dropped watch it catches up what happened meanwhile, without duplicates', async () => {
    stack = await startStack({ roleToRecipients: { '*': [TEAM_CHANNEL] } });
    const relay = await stack.startRelay();
    await until(() => relay.ready() === undefined);
    const a = stack.teleport.createRequest();
    await relay.idle();
    stack.teleport.dropStreams();
    stack.teleport.setState(a.id, 'DENIED', 'no');
    const b = stack.teleport.createRequest();
    const inits = async () =>
      (await relay.metrics.events.get()).values.find((v) => v.labels.type === 'INIT')?.value ?? 0;
    const deadline = Date.now() + 15_000;
    while ((await inits()) < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(await inits()).toBe(2);
    await relay.idle();
    expect(rootsOf(a.id)).toHaveLength(1);
    expect(rootsOf(a.id)[0]!.message).toMatch(/❌ DENIED/);
    expect(rootsOf(b.id)).toHaveLength(1);
    const metrics = await (await fetch(`http://127.0.0.1:${relay.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/teleport_mattermost_identity_expiry_timestamp_seconds \d{10}/);
    expect(metrics).toMatch(/teleport_mattermost_events_total\{type="PUT"\} \d/);
    expect(metrics).toMatch(/teleport_mattermost_posts_total\{result="created"\} 2/);
  });

  it('refuses to start with a clear message when the bot token is rejected', async () => {
    stack = await startStack();
    stack.mattermost.revokeToken(stack.config.mattermost.token);
    await expect(stack.startRelay()).rejects.toThrow(/Mattermost rejected the bot token/);
  });
});
