// spec.teleport.tbot against a real kube-apiserver: the operator creates and owns tbot's ServiceAccount,
// Role, RoleBinding, output Secret, ConfigMap and Deployment; tbot's ServiceAccount can write only its
// Secret; tbot's first write and its renewals reach the status without touching any Deployment; the
// garbage collector removes everything with the CR. (No kubelet: tbot itself does not run; its writes are
// made with its ServiceAccount's credentials, the way tbot makes them.)
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { GROUP, PLURAL, VERSION } from '../../operator/controller/defaults.js';
import type { OperatorHandle } from '../../operator/controller/run.js';
import { parseTbotConfig } from '../support/tbot-schema.js';
import type { MattermostAccessPluginSpec } from '../../operator/controller/types.js';
import { createTestNamespace, loadTestKubeConfig, waitForGarbageCollectorToWatch } from './harness.js';
import {
  applyPlugin,
  createPlugin,
  condition,
  getPlugin,
  identityText,
  installCrd,
  putSecret,
  waitFor,
  startTestOperator,
} from './operator-helpers.js';
import { kubeConfigAs, onlyItsSecret, statusOf, tbotSecretAccess, writeAsTbot } from './tbot-helpers.js';

let kc: KubeConfig;
let ns: string;
let operator: OperatorHandle | undefined;

const spec = {
  teleport: { tbot: { clusterName: 'example.teleport.sh', proxyAddress: 'example.teleport.sh:443' } },
  mattermost: { url: 'https://mattermost.example.com', tokenSecretRef: { name: 'mattermost-token' } },
} as unknown as MattermostAccessPluginSpec;

beforeAll(async () => {
  kc = loadTestKubeConfig();
  await installCrd(kc);
  ns = await createTestNamespace('operator-tbot');
  await putSecret(kc, ns, 'mattermost-token', { token: 'bot-token-1234567890' });
  await putSecret(kc, ns, 'unrelated', { password: 'x' });
  operator = await startTestOperator(kc, ns);
}, 60_000);

afterAll(async () => {
  await operator?.stop();
});

async function read<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch {
    return undefined;
  }
}

it('rejects a tbot block with both addresses, and a tbot block beside identitySecretRef', async () => {
  const create = (teleport: unknown) => createPlugin(kc, ns, 'bad', { ...spec, teleport });
  await expect(
    create({ tbot: { clusterName: 'c', proxyAddress: 'p.example.com:443', authAddress: 'a:3025' } }),
  ).rejects.toThrow(/set exactly one of proxyAddress/);
  await expect(
    create({
      tbot: { clusterName: 'c', proxyAddress: 'p.example.com:443' },
      identitySecretRef: { name: 'x' },
    }),
  ).rejects.toThrow(/remove identitySecretRef/);
  await expect(create({})).rejects.toThrow(/set address and identitySecretRef/);
});

it("creates tbot's objects owned by the CR, tbot writes only its Secret, renewals move the expiry without restarts, and GC removes it all", async () => {
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  await applyPlugin(kc, ns, 'mm', spec);
  const cr = await getPlugin(kc, ns, 'mm');
  const uid = cr.metadata.uid;

  const tbotDeployment = await waitFor('the tbot Deployment', () =>
    read(() => apps.readNamespacedDeployment({ namespace: ns, name: 'mm-tbot' })),
  );
  const objects: KubernetesObject[] = [
    tbotDeployment,
    await waitFor('the tbot ServiceAccount', () =>
      read(() => core.readNamespacedServiceAccount({ namespace: ns, name: 'mm-tbot' })),
    ),
    await waitFor('the tbot Role', () =>
      read(() => rbac.readNamespacedRole({ namespace: ns, name: 'mm-tbot' })),
    ),
    await waitFor('the tbot RoleBinding', () =>
      read(() => rbac.readNamespacedRoleBinding({ namespace: ns, name: 'mm-tbot' })),
    ),
    await waitFor('the tbot ConfigMap', () =>
      read(() => core.readNamespacedConfigMap({ namespace: ns, name: 'mm-tbot' })),
    ),
    await waitFor('the output Secret', () =>
      read(() => core.readNamespacedSecret({ namespace: ns, name: 'mm-tbot-out' })),
    ),
  ];
  for (const obj of objects) {
    expect(obj.metadata!.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'MattermostAccessPlugin', name: 'mm', uid, controller: true }),
    ]);
  }
  const configMap = objects[4] as { data?: Record<string, string> };
  expect(parseTbotConfig(parseYaml(configMap.data!['tbot.yaml']!))).toMatchObject({
    proxy_server: 'example.teleport.sh:443',
    onboarding: { join_method: 'kubernetes', token: 'mm-tbot' },
    outputs: [{ type: 'identity', destination: { type: 'kubernetes_secret', name: 'mm-tbot-out' } }],
  });
  const pending = await waitFor('IdentityValid=False before tbot writes', async () => {
    const c = condition(await getPlugin(kc, ns, 'mm'), 'IdentityValid');
    return c?.reason === 'IdentityKeyNotFound' ? c : undefined;
  });
  expect(pending.message).toContain('tbot (Deployment');
  expect(condition(await getPlugin(kc, ns, 'mm'), 'TbotReady')).toMatchObject({ status: 'False' });

  // tbot's ServiceAccount: its Secret only (the probe write is not an identity).
  expect(await tbotSecretAccess(ns, 'mm-tbot', 'mm-tbot-out', 'unrelated')).toEqual(
    onlyItsSecret('mm-tbot-out', 'unrelated'),
  );
  // The same, tried for real the way tbot writes (get, then apply with the resourceVersion read).
  const tbotKc = await kubeConfigAs(ns, 'mm-tbot');
  expect(await statusOf(writeAsTbot(tbotKc, ns, 'mm-tbot-out', 'probe'))).toBe(0);
  expect(await statusOf(writeAsTbot(tbotKc, ns, 'unrelated', 'probe'))).toBe(403);
  const watcher = await apps.readNamespacedDeployment({ namespace: ns, name: 'mm' });
  const generations = [watcher.metadata!.generation, tbotDeployment.metadata!.generation];

  // tbot's first identity: the watcher becomes configured with no Deployment change.
  await writeAsTbot(tbotKc, ns, 'mm-tbot-out', identityText(3600_000));
  const first = await waitFor('IdentityValid=True after tbot wrote', async () => {
    const live = await getPlugin(kc, ns, 'mm');
    return condition(live, 'IdentityValid')?.status === 'True' ? live.status!.identityExpiresAt! : undefined;
  });
  // A renewal: the expiry moves forward, still no Deployment change.
  await writeAsTbot(tbotKc, ns, 'mm-tbot-out', identityText(2 * 3600_000));
  await waitFor('the renewed expiry in status', async () => {
    const live = await getPlugin(kc, ns, 'mm');
    return Date.parse(live.status!.identityExpiresAt!) > Date.parse(first) ? true : undefined;
  });
  const after = await Promise.all(
    ['mm', 'mm-tbot'].map((name) => apps.readNamespacedDeployment({ namespace: ns, name })),
  );
  expect(after.map((d) => d.metadata!.generation)).toEqual(generations);
  // tbot's writes kept the operator's metadata (different field managers), so the operator did not fight.
  const secret = await core.readNamespacedSecret({ namespace: ns, name: 'mm-tbot-out' });
  expect(secret.metadata!.ownerReferences![0]!.uid).toBe(uid);
  expect(secret.data!.identity).toBeDefined();

  // Deleting the CR: the garbage collector removes every object created for tbot.
  await waitForGarbageCollectorToWatch(ns, {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'MattermostAccessPlugin',
    metadata: { name: 'gc-probe' },
    spec: {
      teleport: { address: 'probe.example.com:443', identitySecretRef: { name: 'probe' } },
      mattermost: { url: 'https://probe.example.com', tokenSecretRef: { name: 'probe' } },
    },
  } as KubernetesObject);
  await kc.makeApiClient(CustomObjectsApi).deleteNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: ns,
    plural: PLURAL,
    name: 'mm',
  });
  const gone = async (fn: () => Promise<unknown>) => ((await read(fn)) === undefined ? true : undefined);
  await waitFor(
    "tbot's objects to be garbage-collected",
    async () =>
      (await gone(() => apps.readNamespacedDeployment({ namespace: ns, name: 'mm-tbot' }))) &&
      (await gone(() => core.readNamespacedServiceAccount({ namespace: ns, name: 'mm-tbot' }))) &&
      (await gone(() => rbac.readNamespacedRole({ namespace: ns, name: 'mm-tbot' }))) &&
      (await gone(() => rbac.readNamespacedRoleBinding({ namespace: ns, name: 'mm-tbot' }))) &&
      (await gone(() => core.readNamespacedConfigMap({ namespace: ns, name: 'mm-tbot' }))) &&
      (await gone(() => core.readNamespacedSecret({ namespace: ns, name: 'mm-tbot-out' }))),
    60_000,
  );
}, 180_000);
