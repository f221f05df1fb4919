// The chart with tbot (upstream values: tbot.enabled, crd.create) on a real API server: `helm upgrade
// --install` creates tbot's workload and RBAC, the MattermostAccessPlugin reading tbot's output Secret, and
// the Teleport operator resources for the bot; tbot's ServiceAccount can write only its Secret; an upgrade
// leaves the identity tbot wrote alone; uninstall removes it all. (No kubelet: tbot does not run; its
// writes are made with its ServiceAccount's credentials, as tbot makes them.)
import {
  ApiextensionsV1Api,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { tbotConfig } from '../../operator/controller/tbot-config.js';
import { parseTbotConfig } from '../support/tbot-schema.js';
import { createTestNamespace, loadTestKubeConfig, runTool } from './harness.js';
import { waitFor } from './operator-helpers.js';
import { kubeConfigAs, onlyItsSecret, statusOf, tbotSecretAccess, writeAsTbot } from './tbot-helpers.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const chartDir = path.join(repoRoot, 'charts', 'teleport-plugin-mattermost');
const tbotValues = path.join(chartDir, 'tests', 'values', 'tbot-upstream.yaml');
const release = 'teleport-plugin-mattermost';
const tbotName = `${release}-tbot`;
const outputSecret = `${release}-tbot-out`;

const kc = loadTestKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);
const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const SSA = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);

const helmHome = mkdtempSync(path.join(os.tmpdir(), 'tpm-helm-'));
const helmEnv = {
  HELM_CACHE_HOME: path.join(helmHome, 'cache'),
  HELM_CONFIG_HOME: path.join(helmHome, 'config'),
  HELM_DATA_HOME: path.join(helmHome, 'data'),
};
afterAll(() => rmSync(helmHome, { recursive: true, force: true }));
const helm = (...args: string[]) => runTool('helm', args, { env: helmEnv }).stdout;

/**
 * Stand-ins for the Teleport operator's CRDs (installed by Teleport's own chart, not ours), accepting any
 * spec: enough for Helm to create the bot and its token, whose content helm-unittest checks.
 */
async function installTeleportOperatorCrds(): Promise<void> {
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  for (const [kind, plural, version] of [
    ['TeleportBotV1', 'teleportbotsv1', 'v1'],
    ['TeleportProvisionToken', 'teleportprovisiontokens', 'v2'],
  ] as const) {
    const name = `${plural}.resources.teleport.dev`;
    await ext.patchCustomResourceDefinition(
      {
        name,
        fieldManager: 'chart-tbot-tests',
        force: true,
        body: {
          apiVersion: 'apiextensions.k8s.io/v1',
          kind: 'CustomResourceDefinition',
          metadata: { name },
          spec: {
            group: 'resources.teleport.dev',
            scope: 'Namespaced',
            names: { kind, plural, singular: plural.replace(/s(v1)?$/, '$1'), listKind: `${kind}List` },
            versions: [
              {
                name: version,
                served: true,
                storage: true,
                schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
              },
            ],
          },
        },
      },
      SSA,
    );
    await waitFor(`CRD ${name} established`, async () => {
      const crd = await ext.readCustomResourceDefinition({ name });
      return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')
        ? true
        : undefined;
    });
  }
}

async function exists(read: () => Promise<unknown>): Promise<boolean> {
  return read().then(
    () => true,
    () => false,
  );
}

it('installs tbot, its least-privilege RBAC, the plugin and the bot resources from upstream-style values', async () => {
  await installTeleportOperatorCrds();
  const namespace = await createTestNamespace('chart-tbot');
  // crds.enabled=false: no pre-upgrade CRD hook Job on the upgrade below (chart-e2e covers it).
  const install = ['--namespace', namespace, '--values', tbotValues, '--set', 'crds.enabled=false'];
  helm('upgrade', '--install', release, chartDir, ...install);

  const deployment = await apps.readNamespacedDeployment({ namespace, name: tbotName });
  const pod = deployment.spec!.template.spec!;
  expect(pod.serviceAccountName).toBe(tbotName);
  expect(pod.containers[0]!.image).toMatch(
    /^public\.ecr\.aws\/gravitational\/tbot-distroless:\d+\.\d+\.\d+$/,
  );
  expect(pod.containers[0]!.readinessProbe!.httpGet!.path).toBe('/readyz');
  expect(await exists(() => core.readNamespacedServiceAccount({ namespace, name: tbotName }))).toBe(true);
  expect((await rbac.readNamespacedRole({ namespace, name: tbotName })).rules).toEqual([
    {
      apiGroups: [''],
      resources: ['secrets'],
      resourceNames: [outputSecret],
      verbs: ['get', 'update', 'patch'],
    },
  ]);
  expect((await rbac.readNamespacedRoleBinding({ namespace, name: tbotName })).subjects).toEqual([
    { kind: 'ServiceAccount', name: tbotName, namespace },
  ]);
  const config = await core.readNamespacedConfigMap({ namespace, name: tbotName });
  // Valid against our model of tbot's schema, and the same document the operator renders for its CRs.
  expect(parseTbotConfig(parseYaml(config.data!['tbot.yaml']!))).toEqual(
    tbotConfig({
      joinMethod: 'kubernetes',
      token: tbotName,
      proxyAddress: 'example.teleport.sh:443',
      outputSecret,
    }),
  );
  expect((await core.readNamespacedSecret({ namespace, name: outputSecret })).data).toBeUndefined();

  // The plugin connects to tbot's address and reads tbot's output Secret.
  const plugin = (await custom.getNamespacedCustomObject({
    group: 'teleport-plugins.dev',
    version: 'v1',
    namespace,
    plural: 'mattermostaccessplugins',
    name: release,
  })) as { spec: { teleport: unknown } };
  expect(plugin.spec.teleport).toEqual({
    address: 'example.teleport.sh:443',
    identitySecretRef: { name: outputSecret, key: 'identity' },
    refreshIdentity: true,
  });
  // crd.create: the bot and its join token, for Teleport's operator.
  const bot = (await custom.getNamespacedCustomObject({
    group: 'resources.teleport.dev',
    version: 'v1',
    namespace,
    plural: 'teleportbotsv1',
    name: release,
  })) as { spec: unknown };
  expect(bot.spec).toEqual({ roles: ['access-plugin'] });
  const token = (await custom.getNamespacedCustomObject({
    group: 'resources.teleport.dev',
    version: 'v2',
    namespace,
    plural: 'teleportprovisiontokens',
    name: tbotName,
  })) as { spec: { kubernetes: unknown } };
  expect(token.spec.kubernetes).toEqual({
    type: 'in_cluster',
    allow: [{ service_account: `${namespace}:${tbotName}` }],
  });

  // tbot's ServiceAccount: its output Secret and nothing else.
  expect(await tbotSecretAccess(namespace, tbotName, outputSecret, `${release}-secret`)).toEqual(
    onlyItsSecret(outputSecret, `${release}-secret`),
  );
  // The same, tried for real the way tbot writes (get, then apply with the resourceVersion read).
  const tbotKc = await kubeConfigAs(namespace, tbotName);
  expect(await statusOf(writeAsTbot(tbotKc, namespace, outputSecret, 'probe'))).toBe(0);
  expect(await statusOf(writeAsTbot(tbotKc, namespace, `${release}-secret`, 'probe'))).toBe(403);
  await writeAsTbot(tbotKc, namespace, outputSecret, 'identity-from-tbot');

  // An upgrade leaves tbot's data alone (Helm never sets the Secret's data).
  helm('upgrade', release, chartDir, ...install, '--set', 'log.severity=DEBUG');
  const secret = await core.readNamespacedSecret({ namespace, name: outputSecret });
  expect(Buffer.from(secret.data!.identity!, 'base64').toString()).toBe('identity-from-tbot');

  helm('uninstall', release, '--namespace', namespace);
  for (const read of [
    () => apps.readNamespacedDeployment({ namespace, name: tbotName }),
    () => core.readNamespacedServiceAccount({ namespace, name: tbotName }),
    () => rbac.readNamespacedRole({ namespace, name: tbotName }),
    () => rbac.readNamespacedRoleBinding({ namespace, name: tbotName }),
    () => core.readNamespacedConfigMap({ namespace, name: tbotName }),
    () => core.readNamespacedSecret({ namespace, name: outputSecret }),
  ]) {
    expect(await exists(read)).toBe(false);
  }
}, 120_000);
