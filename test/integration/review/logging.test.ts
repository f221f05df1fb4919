// One log line per click (Mattermost user, Teleport user, request, decision, outcome), never the key.
import { readFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../../../operator/observability/logger.js';
import { SIGNING_KEY, startReviewStack } from './harness.js';

test('each click is one JSON log line and one metric increment; the key never appears', async () => {
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'review-log-')), 'log.json');
  const s = await startReviewStack({
    logger: createLogger({ severity: 'info', format: 'json', output: file }),
  });
  try {
    s.teleport.setThresholds(2, 2);
    const { request, postId } = await s.requestWithPost();
    await s.click('bob', postId, 'approve');
    await s.click('erin', postId, 'deny');
    // A click's line may be written just after its answer: wait until both lines are there.
    let text = '';
    for (let i = 0; i < 100 && (text.match(/Review click/g) ?? []).length < 2; i++) {
      await new Promise((r) => setTimeout(r, 50));
      text = await readFile(file, 'utf8').catch(() => '');
    }
    const clicks = text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.message === 'Review click');
    expect(clicks).toEqual([
      expect.objectContaining({
        mattermost_user: s.mm.bob!.id,
        teleport_user: 'bob',
        request: request.id,
        decision: 'approve',
        outcome: 'approved',
      }),
      expect.objectContaining({
        mattermost_user: s.mm.erin!.id,
        teleport_user: '',
        request: request.id,
        decision: 'deny',
        outcome: 'no_user',
      }),
    ]);
    expect(text).not.toContain(SIGNING_KEY);
    const metrics = await s.relay.metrics.registry.metrics();
    expect(metrics).toContain('teleport_mattermost_review_clicks_total{outcome="approved"} 1');
    expect(metrics).toContain('teleport_mattermost_review_clicks_total{outcome="no_user"} 1');
  } finally {
    await s.stop();
  }
});
