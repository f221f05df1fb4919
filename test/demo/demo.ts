// `make demo`: the fake Teleport, the fake Mattermost and the relay on loopback in this one process;
// a request is created, reviewed and approved, another one expires. After each step the demo prints what
// that step caused in Mattermost (new posts, edits, thread replies). Finishes by itself in a few seconds.
import { createLogger } from '../../operator/observability/logger.js';
import type { FakeMattermost } from '../mattermost-server/index.js';
import { REVIEWER1, REVIEWER2, TEAM_CHANNEL, startStack, until } from '../integration/relay/harness.js';

const step = (text: string) => process.stdout.write(`\n▶ ${text}\n`);

function where(mm: FakeMattermost, channelId: string): string {
  const ch = mm.channel(channelId);
  if (!ch) return channelId;
  if (ch.type === 'D')
    return `direct message ${[...ch.members].map((id) => '@' + (mm.user(id)?.username ?? id)).join('/')}`;
  return `channel ${mm.store.teams.get(ch.teamId)?.name}/${ch.name}`;
}

const quoted = (text: string) => text.replace(/^/gm, '      | ');

/**
 * Prints the Mattermost activity since the last call: every post, edit and reply the step caused.
 * `seen` holds how many versions of each post were already printed.
 */
function printActivity(mm: FakeMattermost, seen: Map<string, number>): void {
  const lines: string[] = [];
  for (const post of mm.posts()) {
    const versions = [...post.history.map((v) => v.message), post.message];
    for (let i = seen.get(post.id) ?? 0; i < versions.length; i++) {
      const by = `@${mm.user(post.userId)?.username ?? post.userId}`;
      if (i > 0) lines.push(`    ~ ${by} edited post ${post.id} (edit ${i}):`);
      else if (post.rootId) lines.push(`    ↳ ${by} replied in the thread of post ${post.rootId}:`);
      else lines.push(`    + ${by} posted ${post.id} in ${where(mm, post.channelId)}:`);
      lines.push(quoted(versions[i]!));
    }
    seen.set(post.id, versions.length);
  }
  process.stdout.write(
    lines.length > 0 ? `  Mattermost:\n${lines.join('\n')}\n` : '  Mattermost: (nothing)\n',
  );
}

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
    const seen = new Map<string, number>();
    process.stdout.write(
      `  Teleport auth ${stack.teleport.authAddr}, Mattermost ${stack.mattermost.url}, ` +
        `relay health http://127.0.0.1:${relay.httpPort}/readyz\n`,
    );

    step(
      `alice requests the role "editor" (recipients: ${TEAM_CHANNEL} and suggested reviewer ${REVIEWER1}).\n` +
        '  Safe-mention example: her reason contains "@channel", which the post shows without notifying anyone.',
    );
    const first = stack.teleport.createRequest({
      user: 'alice@example.com',
      roles: ['editor'],
      requestReason: 'Deploy hotfix for INC-4242 @channel',
      suggestedReviewers: [REVIEWER1],
    });
    await relay.idle();
    printActivity(stack.mattermost, seen);
    process.stdout.write(
      '  (safe mention: the reason is shown as code, `… @channel`, so Mattermost notifies nobody)\n',
    );

    step(`${REVIEWER1} approves with a comment (1 of 2 approvals needed)`);
    stack.teleport.submitReview(first.id, {
      author: REVIEWER1,
      proposedState: 'APPROVED',
      reason: 'Looks fine, ticket checked',
    });
    await relay.idle();
    printActivity(stack.mattermost, seen);

    step(`${REVIEWER2} approves: the request is APPROVED`);
    stack.teleport.submitReview(first.id, { author: REVIEWER2, proposedState: 'APPROVED', reason: 'ok' });
    await relay.idle();
    printActivity(stack.mattermost, seen);

    step('alice requests "auditor"; nobody reviews it');
    const second = stack.teleport.createRequest({
      user: 'alice@example.com',
      roles: ['auditor'],
      requestReason: 'Quarterly access review',
    });
    await relay.idle();
    printActivity(stack.mattermost, seen);
    step('Teleport deletes the expired request');
    stack.teleport.deleteRequest(second.id);
    await relay.idle();
    printActivity(stack.mattermost, seen);

    const posts = stack.mattermost.posts();
    const roots = posts.filter((p) => !p.rootId);
    step(
      `In all: ${roots.length} posts, ${roots.reduce((n, p) => n + p.history.length, 0)} edits and ` +
        `${posts.length - roots.length} thread replies in ${new Set(posts.map((p) => p.channelId)).size} channels`,
    );
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
