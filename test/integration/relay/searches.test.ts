// Looking for our own post (GET /channels/{id}/posts) costs as much of Mattermost's rate limit as posting.
// Under a tight limit with the tests' short retry budgets, a relay that searched before every retry once
// one attempt had been ambiguous, and at the start of every later pass of a request, spent the limit on
// searches (here, before the fix: not drained after 100 s, 492 answered and 15,832 rate-limited searches;
// after: drained, 15 answered searches for 15 ambiguous failures). A search is owed only after a create
// that may have had an effect: a 429 did nothing. Counts against the fake's limiter, not timings.
import { createMattermostClient } from '../../../operator/mattermost/client.js';
import { silentLogger } from '../../../operator/observability/logger.js';
import { runWatcher } from '../../../operator/relay/run.js';
import { REVIEWER1, TEAM_CHANNEL, TEST_TUNING, startStack, type Stack } from './harness.js';
import { expectOneRootEach } from './root-posts.js';

let stack: Stack;
let stopRelay: (() => Promise<unknown>) | undefined;
afterEach(async () => {
  await stopRelay?.().catch(() => undefined);
  await stack?.stop();
});

const REQUESTS = 30;
const AMBIGUOUS = 15;
const SEARCH = /^\/api\/v4\/channels\/[^/]+\/posts$/;

it('under a tight rate limit: one search per ambiguous post failure, none after 429s; all posted once', async () => {
  stack = await startStack({ roleToRecipients: { '*': [TEAM_CHANNEL, REVIEWER1] } });
  // The short retry caps of the test tunings (250 ms, 1 s budget): passes run out and re-queue often. No
  // pacing gate, so that the limiter answers many 429s whatever the machine's speed.
  const mattermost = createMattermostClient(stack.config.mattermost, silentLogger(), { pacing: false });
  const relay = await runWatcher(stack.config, silentLogger(), { mattermost, tuning: TEST_TUNING });
  stopRelay = () => relay.stop(1000);
  const warm = stack.teleport.createRequest().id;
  await relay.idle();
  stack.mattermost.setRateLimit({ perSecond: 5, burst: 5 });
  // 503s: the post may or may not exist (here it does not), so each of these owes one search, and only these.
  stack.mattermost.fail({
    method: 'POST',
    path: '/api/v4/posts',
    status: 503,
    count: AMBIGUOUS,
  });
  stack.mattermost.clearRequests();
  const ids = Array.from(
    { length: REQUESTS },
    (_, i) => stack.teleport.createRequest({ requestReason: `s${i}` }).id,
  );
  // Bounded so that a relay stuck searching fails on the counts below instead of the test's timeout.
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([relay.idle(), new Promise((r) => (timer = setTimeout(r, 100_000)))]);
  clearTimeout(timer);
  stack.mattermost.setRateLimit(null);

  const log = stack.mattermost.requests();
  const searches = log.filter((r) => r.method === 'GET' && SEARCH.test(r.path));
  const postCalls = log.filter((r) => r.method === 'POST' && r.path === '/api/v4/posts');
  const counts = {
    // A search that found nothing is owed again only after another create that may have had an effect.
    answeredSearches: searches.filter((r) => r.status === 200).length,
    // A search answered 429 is still owed and retried like a post; 15 searches against 60 posts.
    searchCalls: searches.length,
    postCalls: postCalls.length,
    posted: postCalls.filter((r) => r.status === 201).length,
  };
  expect({
    ...counts,
    searchedOncePerAmbiguous: counts.answeredSearches <= AMBIGUOUS,
    fewerSearchesThanPosts: counts.searchCalls < counts.postCalls,
    postedAll: counts.posted === 2 * REQUESTS,
  }).toMatchObject({ searchedOncePerAmbiguous: true, fewerSearchesThanPosts: true, postedAll: true });

  expectOneRootEach(stack, [stack.teamChannelId, stack.dmOf(REVIEWER1)!], [warm, ...ids]);
}, 150_000);
