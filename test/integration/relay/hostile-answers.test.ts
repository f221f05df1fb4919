// Fuzz-style, with a fixed seed: for a while every kind of temporary trouble Mattermost (or a proxy in
// front of it) can answer with — 5xx and 429 before or after the call was carried out, login pages, text,
// truncated, empty and oversize 200s, reset connections — lands on random calls while requests are
// created and approved. Once the server behaves again, every request has exactly one root post per
// recipient, recorded, with its review reply and final edit: nothing lost, nothing duplicated.
import { decodePluginData } from '../../../operator/relay/plugindata.js';
import type { GarbleKind } from '../../mattermost-server/index.js';
import { REVIEWER1, REVIEWER2, TEAM_CHANNEL, startStack, until, type Stack } from './harness.js';
import { prng } from './prng.js';

let stack: Stack;
afterEach(async () => {
  await stack?.stop();
});

const SEED = 20261129;
const PATHS = ['/api/v4/posts', '/api/v4/users/', '/api/v4/channels/', '/api/v4/teams/', undefined];
const METHODS = ['GET', 'POST', 'PUT', undefined];
const GARBLES: GarbleKind[] = ['html', 'text', 'truncated', 'empty', 'oversize'];
const STATUSES = [429, 500, 502, 503, 504];

it('random temporary trouble on random calls: once it stops, nothing is lost or duplicated', async () => {
  const random = prng(SEED);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  stack = await startStack({ roleToRecipients: { '*': [TEAM_CHANNEL, 'team-llama/second', REVIEWER1] } });
  const second = stack.mattermost.addChannel({ team: 'team-llama', name: 'second', members: [stack.botId] });
  const relay = await stack.startRelay();
  await until(() => relay.ready() === undefined, 15_000, 'relay ready');

  const ids: string[] = [];
  for (let round = 0; round < 40; round++) {
    const rule = {
      method: pick(METHODS),
      path: pick(PATHS),
      count: 1 + Math.floor(random() * 3),
      afterProcessing: random() < 0.5,
    };
    const what = random();
    if (what < 0.45) stack.mattermost.garble({ ...rule, kind: pick(GARBLES), bytes: 5 * 1024 * 1024 });
    else if (what < 0.9) stack.mattermost.fail({ ...rule, status: pick(STATUSES) });
    else stack.mattermost.resetConnections(1, { afterProcessing: rule.afterProcessing });
    if (round % 2 === 0) ids.push(stack.teleport.createRequest({ requestReason: `round ${round}` }).id);
    if (round % 4 === 3) {
      const id = ids[Math.floor(random() * ids.length)]!;
      if (stack.teleport.getRequest(id)?.state === 'PENDING') {
        stack.teleport.submitReview(id, { author: REVIEWER2, proposedState: 'APPROVED', reason: 'ok' });
      }
    }
    await new Promise((r) => setTimeout(r, 50 + random() * 50));
  }
  stack.mattermost.clearFailures();
  stack.mattermost.clearGarbles();
  stack.mattermost.resetConnections(0);
  await relay.idle();

  const channels = [stack.teamChannelId, second.id, stack.dmOf(REVIEWER1)].sort();
  const problems: string[] = [];
  for (const id of ids) {
    const roots = stack.mattermost.rootPosts().filter((p) => p.props.teleport_request_id === id);
    const where = roots.map((p) => p.channelId).sort();
    if (JSON.stringify(where) !== JSON.stringify(channels)) problems.push(`${id}: roots in ${where.length}`);
    const data = decodePluginData(stack.teleport.pluginData(id) ?? {});
    const recorded = data.messages.map((m) => m.postId).sort();
    if (JSON.stringify(recorded) !== JSON.stringify(roots.map((p) => p.id).sort())) {
      problems.push(`${id}: recorded posts differ`);
    }
    const approved = stack.teleport.getRequest(id)?.state === 'APPROVED';
    for (const root of roots) {
      const replies = stack.mattermost.repliesTo(root.id).length;
      if (replies !== (approved ? 1 : 0)) problems.push(`${id}: ${replies} replies in ${root.channelId}`);
      if (approved && !/✅ APPROVED/.test(root.message)) problems.push(`${id}: not edited`);
      if (root.props.from_bot !== 'true') problems.push(`${id}: from_bot lost`);
    }
  }
  expect(problems).toEqual([]);
  expect(stack.mattermost.posts().every((p) => p.channelId !== '')).toBe(true);
}, 90_000);
