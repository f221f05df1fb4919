// A burst of real clicks through the Mattermost-compatible server's action route, paced evenly: each of
// `reviewers` clicks Approve once on each of `requests` pending requests, plus `repeats` callbacks replayed
// straight to the listener (duplicates). Shared by the load test (correctness) and bench N1 (latency).
import { performance } from 'node:perf_hooks';
import type { ReviewStack } from './harness.js';

export interface ClickLoadResult {
  /** Click → answer (the answer comes after SubmitAccessReview), ms, one per valid click. */
  latenciesMs: number[];
  /** Ephemeral texts shown, by text. */
  texts: Map<string, number>;
  requestIds: string[];
  repeatedAnswers: string[];
  durationMs: number;
}

export async function clickLoad(
  s: ReviewStack,
  opts: { requests: number; reviewers: string[]; perSecond: number; repeats: number },
): Promise<ClickLoadResult> {
  s.teleport.setThresholds(opts.reviewers.length + 1, opts.reviewers.length + 1);
  const posts = await Promise.all(Array.from({ length: opts.requests }, () => s.requestWithPost()));
  const clicks = posts.flatMap((p) => opts.reviewers.map((user) => ({ user, postId: p.postId })));
  const gapMs = 1000 / opts.perSecond;
  const latenciesMs: number[] = [];
  const texts = new Map<string, number>();
  const start = performance.now();
  await Promise.all(
    clicks.map(async (c, i) => {
      await new Promise((r) => setTimeout(r, i * gapMs));
      const t0 = performance.now();
      const res = await s.click(c.user, c.postId, 'approve');
      latenciesMs.push(performance.now() - t0);
      if (res.status !== 200) texts.set(`HTTP ${res.status}`, (texts.get(`HTTP ${res.status}`) ?? 0) + 1);
    }),
  );
  const durationMs = performance.now() - start;
  for (const user of opts.reviewers) {
    for (const e of s.mattermost.ephemeralsFor(s.mm[user]!.id))
      texts.set(e.message, (texts.get(e.message) ?? 0) + 1);
  }
  const bodies = s.mattermost
    .callbacks()
    .slice(-clicks.length)
    .slice(0, opts.repeats)
    .map((c) => c.body);
  const repeatedAnswers = await Promise.all(
    bodies.map(async (body) => {
      const res = await fetch(s.callbackUrl, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body,
      });
      return ((await res.json()) as { ephemeral_text: string }).ephemeral_text;
    }),
  );
  return { latenciesMs, texts, requestIds: posts.map((p) => p.request.id), repeatedAnswers, durationMs };
}
