// The operator's memory does not grow with Secrets it has nothing to do with: 200 unrelated 512 KiB
// Secrets (think Helm release Secrets) in its namespace end up in none of its caches, as its own
// cache_objects / cache_secret_data_bytes metrics show, while a change of a Secret a resource references
// still reaches the Deployment.
import { randomBytes } from 'node:crypto';
import { AppsV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { CONFIG_HASH_ANNOTATION } from '../../operator/controller/defaults.js';
import { runOperator, type OperatorHandle } from '../../operator/controller/run.js';
import { silentLogger } from '../../operator/observability/logger.js';
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
} from './operator-helpers.js';

const UNRELATED = 200;
const UNRELATED_BYTES = 512 * 1024;

let kc: KubeConfig;
let ns: string;
let operator: OperatorHandle;

beforeAll(async () => {
  kc = loadTestKubeConfig();
  await installCrd(kc);
  ns = await createTestNamespace('operator-secrets');
  await putSecret(kc, ns, 'teleport-plugin-mattermost-identity', { identity: identityText() });
  await putSecret(kc, ns, 'mattermost-token', { token: 'bot-token-1234567890' });
  await applyPlugin(kc, ns, 'mattermost', baseSpec());
  operator = await runOperator(
    {
      kubeConfig: kc,
      namespace: ns,
      metricsAddr: '127.0.0.1:0',
      leaderElect: false,
      watcherImage: 'registry.example.test/teleport-plugin-mattermost:1.2.3',
    },
    silentLogger(),
  );
}, 60_000);

afterAll(async () => {
  await operator?.stop();
});

/** The operator's cache metrics, from its own /metrics endpoint. */
async function cacheMetrics(): Promise<{ objects: Record<string, number>; secretBytes: number }> {
  const text = await (await fetch(`http://127.0.0.1:${operator.metricsPort}/metrics`)).text();
  const objects: Record<string, number> = {};
  for (const m of text.matchAll(/^teleport_mattermost_operator_cache_objects\{kind="([^"]+)"\} (\S+)$/gm))
    objects[m[1]!] = Number(m[2]);
  const bytes = /^teleport_mattermost_operator_cache_secret_data_bytes (\S+)$/m.exec(text);
  return { objects, secretBytes: Number(bytes?.[1]) };
}

it('caches none of 200 large unrelated Secrets and still reacts to a referenced Secret changing', async () => {
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const deployment = () => apps.readNamespacedDeployment({ name: 'mattermost', namespace: ns });
  await waitFor('first reconcile', async () => {
    const cr = await getPlugin(kc, ns, 'mattermost');
    return condition(cr, 'IdentityValid')?.status === 'True' ? cr : undefined;
  });
  const hashBefore = (await deployment()).spec!.template.metadata!.annotations![CONFIG_HASH_ANNOTATION];
  expect((await cacheMetrics()).objects.Secret).toBe(2);

  // 200 Secrets of 512 KiB (base64) each, like Helm release Secrets; ~100 MiB in all.
  const blob = randomBytes((UNRELATED_BYTES / 4) * 3).toString('base64');
  for (let i = 0; i < UNRELATED; i += 10) {
    await Promise.all(
      Array.from({ length: 10 }, (_, j) =>
        core.createNamespacedSecret({
          namespace: ns,
          body: {
            metadata: { name: `sh.helm.release.v1.app-${i + j}.v1`, labels: { owner: 'helm' } },
            type: 'helm.sh/release.v1',
            data: { release: blob },
          },
        }),
      ),
    );
  }

  // Changing the token (read by the watcher only at start, so it is in the pod template's config hash)
  // must roll the Deployment. Watch events arrive in order, so once it has, the operator has also seen
  // all 200 unrelated Secrets.
  await putSecret(kc, ns, 'mattermost-token', { token: 'bot-token-rotated-0987654321' });
  await waitFor(
    'config hash to change after the token Secret changed',
    async () => {
      const hash = (await deployment()).spec!.template.metadata!.annotations![CONFIG_HASH_ANNOTATION];
      return hash !== hashBefore ? hash : undefined;
    },
    60_000,
  );

  const { objects, secretBytes } = await cacheMetrics();
  // Only the identity and token Secrets: their data, and their metadata from the metadata-only watch.
  expect(objects.Secret).toBe(2);
  expect(objects.SecretMetadata).toBeLessThanOrEqual(2);
  expect(secretBytes).toBeGreaterThan(0);
  expect(secretBytes).toBeLessThan(64 * 1024);
  expect(objects.MattermostAccessPlugin).toBe(1);
  expect(objects.Deployment).toBe(1);
  expect(objects.ConfigMap).toBe(1);
}, 180_000);
