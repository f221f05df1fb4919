// N1 native reviews: click → review latency through the Mattermost-compatible server's action route
// (signed trigger_id, our listener, user mapping, SubmitAccessReview on behalf), at 20 clicks/s.
import { ms, summary } from '../lib/measure.js';
import { scaled, type ScenarioOptions, type ScenarioResult } from '../lib/result.js';
import { startReviewStack } from '../../test/integration/review/harness.js';
import { clickLoad } from '../../test/integration/review/load.js';

export async function n1ReviewClicks(opts: ScenarioOptions): Promise<ScenarioResult> {
  const stack = await startReviewStack();
  try {
    const requests = scaled(50, opts);
    opts.log(`N1: ${requests * 4} clicks on ${requests} requests at 20/s`);
    const r = await clickLoad(stack, {
      requests,
      reviewers: ['r1', 'r2', 'r3', 'r4'],
      perSecond: 20,
      repeats: 20,
    });
    const lat = summary(r.latenciesMs);
    const approved = [...r.texts.entries()].find(([t]) => t.startsWith('Your approval'))?.[1] ?? 0;
    const reviews = r.requestIds.reduce(
      (n, id) => n + (stack.teleport.getRequest(id)?.reviews.length ?? 0),
      0,
    );
    return {
      id: 'N1',
      title: 'Native review: click → review latency',
      figures: [
        ['click → review p50', ms(lat.p50)],
        ['click → review p99', ms(lat.p99)],
        ['max', ms(lat.max)],
        ['clicks / reviews recorded', `${lat.n} / ${reviews}`],
        [
          'replayed callbacks refused',
          `${r.repeatedAnswers.filter((t) => t.includes('already handled')).length} / ${r.repeatedAnswers.length}`,
        ],
      ],
      headline: `click → review p50 ${ms(lat.p50)}, p99 ${ms(lat.p99)}; ${lat.n} clicks, ${reviews} reviews`,
      target: 'answer within 10 s; every valid click one review, no duplicates',
      met: lat.max < 10_000 && approved === lat.n && reviews === lat.n,
      notes: [
        "Measured from the user's POST /api/v4/posts/{id}/actions/approve to Mattermost's answer, which comes after our listener answered, i.e. after SubmitAccessReview returned.",
        "Includes the fake Mattermost's callback (signed trigger_id), trigger_id and context verification, plugin data and request reads, the cached trait index, and the on-behalf review.",
      ],
    };
  } finally {
    await stack.stop();
  }
}
