// Load: 200 clicks in 10 s on 50 requests → every valid click is one review, no duplicates, and the
// listener keeps answering (every click gets its 200 and its text). Latency is measured in bench N1.
import { EPHEMERAL_TEXT } from '../../../operator/review/handler.js';
import { startReviewStack, type ReviewStack } from './harness.js';
import { clickLoad } from './load.js';

let s: ReviewStack;
beforeAll(async () => {
  s = await startReviewStack();
});
afterAll(async () => {
  await s.stop();
});

test('200 clicks in 10 s on 50 requests: one review per valid click, no duplicates', async () => {
  const reviewers = ['r1', 'r2', 'r3', 'r4'];
  const r = await clickLoad(s, { requests: 50, reviewers, perSecond: 20, repeats: 40 });
  expect(r.latenciesMs).toHaveLength(200);
  expect(Object.fromEntries(r.texts)).toEqual({ [EPHEMERAL_TEXT.approved]: 200 });
  expect(new Set(r.repeatedAnswers)).toEqual(new Set([EPHEMERAL_TEXT.repeated]));
  for (const id of r.requestIds) {
    const authors = s.teleport.getRequest(id)!.reviews.map((x) => x.author);
    expect(authors.sort()).toEqual(reviewers);
  }
}, 60_000);
