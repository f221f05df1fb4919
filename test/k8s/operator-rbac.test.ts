// The operator runs with nothing but the RBAC in operator/controller/rbac/role.yaml (a ServiceAccount
// token, not the harness admin): every call it makes must be allowed, and nothing more is granted.
import { readFileSync } from 'node:fs';
import {
  AuthorizationV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
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

const SA = 'teleport-mattermost-operator';
let admin: KubeConfig;
let ns: string;
let operator: OperatorHandle | undefined;

function rbacDocs(namespace: string, file = 'role.yaml'): KubernetesObject[] {
  const text = readFileSync(new URL(`../../operator/controller/rbac/${file}`, import.meta.url), 'utf8');
  return parseAllDocuments(text).map((d) => {
    const obj = d.toJSON() as KubernetesObject & { subjects?: Array<{ namespace?: string }> };
    if (file === 'role.yaml') obj.metadata!.namespace = namespace;
    // Cluster-scoped names get the namespace as suffix so test runs never share a binding.
    else obj.metadata!.name = `${obj.metadata!.name}-${namespace}`;
    const ref = (obj as { roleRef?: { name: string } }).roleRef;
    if (ref && file !== 'role.yaml') ref.name = `${ref.name}-${namespace}`;
    for (const s of obj.subjects ?? []) s.namespace = namespace;
    return obj;
  });
}

async function serviceAccountKubeConfig(namespace: string): Promise<KubeConfig> {
  const core = admin.makeApiClient(CoreV1Api);
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: SA } } });
  const tr = await core.createNamespacedServiceAccountToken({
    name: SA,
    namespace,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const cluster = admin.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'sa', token: tr.status!.token }],
    contexts: [{ name: 'sa', cluster: cluster.name, user: 'sa' }],
    currentContext: 'sa',
  });
  return kc;
}

beforeAll(async () => {
  admin = loadTestKubeConfig();
  await installCrd(admin);
  ns = await createTestNamespace('operator-rbac');
  const objects = KubernetesObjectApi.makeApiClient(admin);
  for (const doc of rbacDocs(ns)) {
    await objects.patch(doc, undefined, undefined, 'operator-tests', true, PatchStrategy.ServerSideApply);
  }
}, 60_000);

afterAll(async () => {
  await operator?.stop();
});

it('reconciles with only the least-privilege Role', async () => {
  const kc = await serviceAccountKubeConfig(ns);
  await putSecret(admin, ns, 'teleport-plugin-mattermost-identity', { identity: identityText() });
  await putSecret(admin, ns, 'mattermost-token', { token: 'bot-token-1234567890' });
  operator = await runOperator(
    {
      kubeConfig: kc,
      namespace: ns,
      metricsAddr: '127.0.0.1:0',
      leaderElect: true,
      leaseNamespace: ns,
      watcherImage: 'registry.example.test/teleport-plugin-mattermost:1.2.3',
    },
    silentLogger(),
  );
  await waitFor('leader', async () => (operator!.isLeader() ? true : undefined));
  await applyPlugin(admin, ns, 'mm', baseSpec());
  const cr = await waitFor('status', async () => {
    const c = await getPlugin(admin, ns, 'mm');
    return condition(c, 'IdentityValid')?.status === 'True' ? c : undefined;
  });
  expect(cr.status!.deploymentName).toBe('mm');
  const events = await admin.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: ns });
  expect(events.items.some((e) => e.reason === 'DeploymentCreated')).toBe(true);
  const errors = await operator.metrics.reconcileErrors.get();
  expect(errors.values.reduce((n, v) => n + v.value, 0)).toBe(0);
});

it("creates tbot's objects with only that Role (Kubernetes lets it grant tbot's Role because it holds those rights)", async () => {
  await applyPlugin(admin, ns, 'bot', {
    ...baseSpec(),
    teleport: { tbot: { clusterName: 'example.teleport.sh', proxyAddress: 'example.teleport.sh:443' } },
  } as unknown as ReturnType<typeof baseSpec>);
  const cr = await waitFor("TbotReady (tbot's objects applied)", async () => {
    const c = await getPlugin(admin, ns, 'bot');
    return condition(c, 'TbotReady') && condition(c, 'IdentityValid')?.reason === 'IdentityKeyNotFound'
      ? c
      : undefined;
  });
  expect(condition(cr, 'ConfigValid')!.status).toBe('True');
  const role = await admin
    .makeApiClient(RbacAuthorizationV1Api)
    .readNamespacedRole({ namespace: ns, name: 'bot-tbot' });
  expect(role.rules![0]!.resourceNames).toEqual(['bot-tbot-out']);
  const errors = await operator!.metrics.reconcileErrors.get();
  expect(errors.values.reduce((n, v) => n + v.value, 0)).toBe(0);
});

it('grants no spec writes on the resources and no deletes (Secret writes only for tbot)', async () => {
  const authz = admin.makeApiClient(AuthorizationV1Api);
  const can = async (verb: string, group: string, resource: string, subresource = '') => {
    const review = await authz.createSubjectAccessReview({
      body: {
        spec: {
          user: `system:serviceaccount:${ns}:${SA}`,
          groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
          resourceAttributes: { namespace: ns, verb, group, resource, subresource },
        },
      },
    });
    return review.status!.allowed;
  };
  expect(await can('patch', 'teleport-plugins.dev', 'mattermostaccessplugins', 'status')).toBe(true);
  expect(await can('patch', 'teleport-plugins.dev', 'mattermostaccessplugins')).toBe(false);
  expect(await can('update', 'teleport-plugins.dev', 'mattermostaccessplugins')).toBe(false);
  // create/patch: tbot's output Secret (metadata only); get/update/patch: Kubernetes lets the operator
  // create tbot's Role (those verbs on one Secret) only if it holds them. Never delete.
  for (const verb of ['create', 'update', 'patch']) expect(await can(verb, '', 'secrets')).toBe(true);
  expect(await can('delete', '', 'secrets')).toBe(false);
  for (const resource of ['roles', 'rolebindings']) {
    expect(await can('create', 'rbac.authorization.k8s.io', resource)).toBe(true);
    expect(await can('delete', 'rbac.authorization.k8s.io', resource)).toBe(false);
    expect(await can('escalate', 'rbac.authorization.k8s.io', resource)).toBe(false);
    expect(await can('bind', 'rbac.authorization.k8s.io', resource)).toBe(false);
  }
  expect(await can('delete', '', 'services')).toBe(false);
  expect(await can('delete', 'apps', 'deployments')).toBe(false);
  expect(await can('delete', '', 'configmaps')).toBe(false);
  expect(await can('list', '', 'pods')).toBe(false);
});

it('with the optional ClusterRole, watches every namespace (--all-namespaces)', async () => {
  await operator?.stop();
  operator = undefined;
  const objects = KubernetesObjectApi.makeApiClient(admin);
  for (const doc of rbacDocs(ns, 'cluster-role.yaml')) {
    await objects.patch(doc, undefined, undefined, 'operator-tests', true, PatchStrategy.ServerSideApply);
  }
  const other = await createTestNamespace('operator-rbac-other');
  await putSecret(admin, other, 'teleport-plugin-mattermost-identity', { identity: identityText() });
  await putSecret(admin, other, 'mattermost-token', { token: 'bot-token-1234567890' });
  const core = admin.makeApiClient(CoreV1Api);
  const tr = await core.createNamespacedServiceAccountToken({
    name: SA,
    namespace: ns,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const cluster = admin.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'sa', token: tr.status!.token }],
    contexts: [{ name: 'sa', cluster: cluster.name, user: 'sa' }],
    currentContext: 'sa',
  });
  operator = await runOperator(
    {
      kubeConfig: kc,
      metricsAddr: '127.0.0.1:0',
      leaderElect: true,
      leaseNamespace: ns,
      watcherImage: 'registry.example.test/p:1',
    },
    silentLogger(),
  );
  await applyPlugin(admin, other, 'elsewhere', baseSpec());
  const cr = await waitFor('reconciled in another namespace', async () => {
    const c = await getPlugin(admin, other, 'elsewhere');
    return condition(c, 'IdentityValid')?.status === 'True' ? c : undefined;
  });
  expect(cr.status!.deploymentName).toBe('elsewhere');
});
