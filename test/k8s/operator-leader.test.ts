// Two operator replicas against one kube-apiserver: a Lease elects one writer.
import { AppsV1Api, CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { OperatorHandle } from '../../operator/controller/run.js';
import { createTestNamespace, loadTestKubeConfig } from './harness.js';
import {
  applyPlugin,
  baseSpec,
  condition,
  getPlugin,
  identityText,
  installCrd,
  putSecret,
  waitFor,
  writesExcludingLeases,
  startTestOperator,
} from './operator-helpers.js';

let kc: KubeConfig;
let ns: string;
const replicas: OperatorHandle[] = [];

beforeAll(async () => {
  kc = loadTestKubeConfig();
  await installCrd(kc);
  ns = await createTestNamespace('operator-leader');
  await putSecret(kc, ns, 'teleport-plugin-mattermost-identity', { identity: identityText() });
  await putSecret(kc, ns, 'mattermost-token', { token: 'bot-token-1234567890' });
  for (const identity of ['replica-a', 'replica-b']) {
    replicas.push(
      await startTestOperator(kc, ns, {
        leaderElect: true,
        leaseNamespace: ns,
        identity,
        resyncMs: 3600_000,
      }),
    );
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.stop()));
});

it('only the leader writes; the standby takes over when the leader stops', async () => {
  const leaderIndex = await waitFor('a leader', async () => {
    const leaders = replicas.map((r, i) => (r.isLeader() ? i : -1)).filter((i) => i >= 0);
    return leaders.length === 1 ? leaders[0] : undefined;
  });
  const leader = replicas[leaderIndex]!;
  const standby = replicas[1 - leaderIndex]!;
  expect(standby.isLeader()).toBe(false);
  const lease = await kc
    .makeApiClient(CoordinationV1Api)
    .readNamespacedLease({ name: 'teleport-mattermost-operator', namespace: ns });
  expect(lease.spec?.holderIdentity).toBe(leaderIndex === 0 ? 'replica-a' : 'replica-b');
  // Both replicas are ready (caches synced); only one of them writes.
  expect(leader.ready()).toBeUndefined();
  expect(standby.ready()).toBeUndefined();

  await applyPlugin(kc, ns, 'first', baseSpec());
  await waitFor('first reconciled', async () =>
    condition(await getPlugin(kc, ns, 'first'), 'IdentityValid') ? true : undefined,
  );
  expect(await writesExcludingLeases(leader.metrics.apiWrites)).toBeGreaterThan(0);
  expect(await writesExcludingLeases(standby.metrics.apiWrites)).toBe(0);

  await leader.stop();
  await waitFor('standby leads', async () => (standby.isLeader() ? true : undefined), 25_000);
  await applyPlugin(kc, ns, 'second', baseSpec());
  await waitFor('second reconciled', async () =>
    condition(await getPlugin(kc, ns, 'second'), 'IdentityValid') ? true : undefined,
  );
  expect(await writesExcludingLeases(standby.metrics.apiWrites)).toBeGreaterThan(0);
  const d = await kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ name: 'second', namespace: ns });
  expect(d.metadata?.ownerReferences?.[0]?.name).toBe('second');
});
