// The listener answers Mattermost in time even when Teleport is slow: the reviewer is told the review may
// or may not be recorded (it is, later), instead of Mattermost's bare error after its 30 s timeout.
import { EPHEMERAL_TEXT } from '../../../operator/review/handler.js';
import { startReviewStack, until, type ReviewStack } from './harness.js';

let s: ReviewStack;
beforeAll(async () => {
  s = await startReviewStack({ review: { answerDeadlineMs: 300 } });
});
afterAll(async () => {
  await s.stop();
});

test('a slow Teleport gets the "check before clicking again" answer within the deadline', async () => {
  const { request, postId } = await s.requestWithPost();
  // Warm the key and trait caches, then slow every Teleport answer down.
  s.teleport.setThresholds(5, 5);
  await s.click('r1', postId, 'approve');
  s.teleport.delay(1500);
  try {
    const res = await s.click('r2', postId, 'approve');
    expect(res.status).toBe(200);
    // The deadline answered (the review was still on its way).
    expect(s.lastEphemeral('r2')).toBe(EPHEMERAL_TEXT.timeout);
    await until(
      () => (s.teleport.getRequest(request.id)?.reviews.length ?? 0) === 2,
      10_000,
      'the late review',
    );
  } finally {
    s.teleport.delay(0);
    s.teleport.setThresholds(1, 1);
  }
});
