// The Teleport side of native reviews through the Teleport-compatible test server: SubmitAccessReview on
// behalf of a user (submit_for_users allow/deny with globs, the author's own rights, the AccessDenied
// messages), RequestKind on the wire, ListUsers paging and GetUser with traits.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isTeleportError } from '../../../operator/teleport/api.js';
import { connectTeleport } from '../../../operator/teleport/client.js';
import type { TeleportClient } from '../../../operator/teleport/client.js';
import { silentLogger } from '../../../operator/observability/logger.js';
import { startFakeTeleport } from '../../teleport-server/index.js';
import type { FakeTeleport } from '../../teleport-server/index.js';

let tp: FakeTeleport;
let client: TeleportClient;

beforeAll(async () => {
  tp = await startFakeTeleport();
  const dir = await mkdtemp(join(tmpdir(), 'tp-review-'));
  const identity = await tp.writeIdentity({ dir, user: 'mm-plugin' });
  tp.putRole({ name: 'plugin', allow: { submitForUsers: ['*'] }, deny: { submitForUsers: ['break-glass'] } });
  tp.putRole({ name: 'reviewer', allow: { reviewRoles: ['editor', 'db-*'] } });
  tp.putRole({ name: 'no-db', deny: { reviewRoles: ['db-admin'] } });
  tp.putUser({ name: 'mm-plugin', roles: ['plugin'], traits: {} });
  tp.putUser({ name: 'bob', roles: ['reviewer'], traits: { mattermost_user_id: ['u-bob'] } });
  tp.putUser({ name: 'carol', roles: ['reviewer', 'no-db'], traits: {} });
  tp.putUser({ name: 'break-glass', roles: ['reviewer'], traits: {} });
  tp.putUser({ name: 'dave', roles: [], traits: {} });
  tp.putUser({ name: 'alice', roles: ['reviewer'], traits: {} });
  client = await connectTeleport(
    { addr: tp.authAddr, identity, refreshIdentity: false, refreshIdentityIntervalMs: 60_000 },
    silentLogger(),
    { connectTimeoutMs: 5000 },
  );
});

afterAll(async () => {
  client.close();
  await tp.stop();
});

const submit = (requestId: string, author: string, proposedState: 'APPROVED' | 'DENIED' = 'APPROVED') =>
  client.submitReviewOnBehalf({ requestId, author, proposedState, reason: 'via Mattermost' });

async function denial(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(isTeleportError(err, 'AccessDenied')).toBe(true);
    return (err as Error).message;
  }
  throw new Error('expected AccessDenied');
}

test('a review on behalf of a reviewer is recorded with the author, the plugin and field 12', async () => {
  const req = tp.createRequest({ user: 'alice', roles: ['editor'] });
  const updated = await submit(req.id, 'bob');
  expect(updated.state).toBe('APPROVED');
  expect(updated.reviews).toEqual([
    expect.objectContaining({
      author: 'bob',
      proposedState: 'APPROVED',
      reason: 'via Mattermost',
      submittedBy: 'mm-plugin',
      onBehalfOfAuthor: true,
    }),
  ]);
});

test('AccessDenied: no rights, own request, deny rules, already reviewed, already resolved', async () => {
  const db = tp.createRequest({ user: 'alice', roles: ['db-admin'] });
  expect(await denial(submit(db.id, 'dave'))).toMatch(/cannot review/);
  expect(await denial(submit(db.id, 'carol'))).toMatch(/cannot review/);
  const own = tp.createRequest({ user: 'bob', roles: ['editor'] });
  expect(await denial(submit(own.id, 'bob'))).toMatch(/cannot review/);
  expect(await denial(submit(own.id, 'break-glass'))).toMatch(/not allowed to submit reviews on behalf/);
  expect(await denial(submit(own.id, 'nobody'))).toMatch(/not allowed|not a local/);

  tp.setThresholds(2, 2);
  try {
    const multi = tp.createRequest({ user: 'alice', roles: ['editor'] });
    expect((await submit(multi.id, 'bob')).state).toBe('PENDING');
    expect(await denial(submit(multi.id, 'bob', 'DENIED'))).toMatch(/has already reviewed this request/);
    expect((await submit(multi.id, 'carol')).state).toBe('APPROVED');
    expect(await denial(submit(multi.id, 'break-glass'))).toMatch(/not allowed/);
    tp.putUser({ name: 'erin', roles: ['reviewer'], traits: {} });
    expect(await denial(submit(multi.id, 'erin'))).toMatch(/the access request has been already approved/);
  } finally {
    tp.setThresholds(1, 1);
  }
  expect(tp.getRequest(db.id)!.reviews).toHaveLength(0);
});

test('an Auth server without the feature ignores field 12 and refuses (fails closed)', async () => {
  tp.reviews.onBehalfSupported = false;
  try {
    const req = tp.createRequest({ user: 'alice', roles: ['editor'] });
    expect(await denial(submit(req.id, 'bob'))).toMatch(/cannot submit reviews on behalf of "bob"/);
    expect(tp.getRequest(req.id)!.reviews).toHaveLength(0);
  } finally {
    tp.reviews.onBehalfSupported = true;
  }
});

test('RequestKind travels as field 24', async () => {
  const long = tp.createRequest({ user: 'alice', roles: ['editor'], requestKind: 'LONG_TERM' });
  const plain = tp.createRequest({ user: 'alice', roles: ['editor'] });
  expect((await client.getAccessRequest(long.id))?.requestKind).toBe('LONG_TERM');
  expect((await client.getAccessRequest(plain.id))?.requestKind).toBeUndefined();
  expect(await client.getAccessRequest('00000000-0000-0000-0000-000000000000')).toBeUndefined();
});

test('ListUsers pages through every user with traits; GetUser is exact', async () => {
  const seen: string[] = [];
  let token = '';
  do {
    const page = await client.listUsers(token, 2);
    expect(page.users.length).toBeLessThanOrEqual(2);
    seen.push(...page.users.map((u) => u.name));
    token = page.nextPageToken;
  } while (token);
  expect(seen).toEqual(expect.arrayContaining(['alice', 'bob', 'carol', 'dave', 'mm-plugin']));
  expect(new Set(seen).size).toBe(seen.length);
  expect((await client.getUser('bob'))?.traits).toEqual({ mattermost_user_id: ['u-bob'] });
  expect(await client.getUser('bo')).toBeUndefined();
});
