// Start-up while Teleport is not answering yet: the watcher keeps trying instead of crash-looping,
// then posts as usual; bad credentials stay fatal.
import { status } from '@grpc/grpc-js';
import fs from 'node:fs/promises';
import { startStack, until, type Stack } from './harness.js';

let stack: Stack;
afterEach(async () => stack?.stop());

it('retries the first connection while Teleport answers UNAVAILABLE, then relays', async () => {
  stack = await startStack();
  stack.teleport.failNext('Ping', status.UNAVAILABLE, 'auth is restarting', 4);
  const relay = await stack.startRelay();
  expect(stack.teleport.callCount('Ping')).toBeGreaterThanOrEqual(5);
  await until(() => relay.ready() === undefined, 15_000, 'ready');
  const request = stack.teleport.createRequest({ user: 'requester1@example.com', roles: ['editor'] });
  await until(() => stack.mattermost.posts().some((p) => p.message.includes(request.id)), 15_000, 'the post');
});

it('fails at once when the identity file is missing', async () => {
  stack = await startStack();
  await fs.rm(stack.config.teleport.identity as string);
  await expect(stack.startRelay()).rejects.toThrow(/identity/i);
});
