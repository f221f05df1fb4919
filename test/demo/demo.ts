// `make demo`: the fake Teleport, the fake Mattermost and the relay on loopback in this one process;
// a request is created, reviewed and approved, another one expires, and the Mattermost conversation
// is printed as a transcript. Finishes by itself in a few seconds.
import { createLogger } from '../../operator/observability/logger.js';
import { REVIEWER1, REVIEWER2, TEAM_CHANNEL, startStack, until } from '../integration/relay/harness.js';

const step = (text: string) => process.stdout.write(`\n▶ ${text}\n`);

async function main(): Promise<void> {
  const started = Date.now();
  step('Starting a Teleport-compatible server, a Mattermost-compatible server and the relay (loopback only)');
  const stack = await startStack({
    roleToRecipients: { '*': [TEAM_CHANNEL] },
    teleport: { approveThreshold: 2 },
  });
  try {
    const logger = createLogger({ severity: 'warn', format: 'text', output: 'stderr' });
    const relay = await stack.startRelay({ logger });
    await until(() => relay.ready() === undefined, 20_000, 'the relay to be ready');
    process.stdout.write(
      `  Teleport auth ${stack.teleport.authAddr}, Mattermost ${stack.mattermost.url}, ` +
        `relay health http://127.0.0.1:${relay.httpPort}/readyz\n`,
    );

    step(
      `alice requests the role "editor" (recipients: ${TEAM_CHANNEL} and suggested reviewer ${REVIEWER1})`,
    );
    const first = stack.teleport.createRequest({
      user: 'alice@example.com',
      roles: ['editor'],
      requestReason: 'Deploy hotfix for INC-4242 @channel',
      suggestedReviewers: [REVIEWER1],
    });
    await relay.idle();

    step(`${REVIEWER1} approves with a comment (1 of 2 approvals needed)`);
    stack.teleport.submitReview(first.id, {
      author: REVIEWER1,
      proposedState: 'APPROVED',
      reason: 'Looks fine, ticket checked',
    });
    await relay.idle();

    step(`${REVIEWER2} approves: the request is APPROVED`);
    stack.teleport.submitReview(first.id, { author: REVIEWER2, proposedState: 'APPROVED', reason: 'ok' });
    await relay.idle();

    step('alice requests "auditor"; nobody reviews it and it expires (Teleport deletes it)');
    const second = stack.teleport.createRequest({
      user: 'alice@example.com',
      roles: ['auditor'],
      requestReason: 'Quarterly access review',
    });
    await relay.idle();
    stack.teleport.deleteRequest(second.id);
    await relay.idle();

    step('The Mattermost conversation');
    process.stdout.write(`${stack.mattermost.transcript()}\n`);
    await relay.stop(5000);
    step(`Done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await stack.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
