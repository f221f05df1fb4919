// The chart against the real kube-apiserver: the install users run from Teleport's guide
// (`helm upgrade --install teleport-plugin-mattermost … --values teleport-mattermost-helm.yaml`), an upgrade
// with changed recipients, and an uninstall that keeps the CRD. The operator's RBAC is checked with the
// API server's own authorizer (SubjectAccessReview), so "least privilege" is asserted, not assumed.
import {
  ApiException,
  ApiextensionsV1Api,
  AppsV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse as parseYaml, stringify as toYaml } from 'yaml';
import { createTestNamespace, loadTestKubeConfig, runTool } from './harness.js';
import { helmRunningHookJobs, helmTestRunningPods } from './hook-jobs.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const chartDir = path.join(repoRoot, 'charts', 'teleport-plugin-mattermost');
const guideValues = path.join(repoRoot, 'test', 'fixtures', 'guide', 'teleport-mattermost-helm.yaml');
const release = 'teleport-plugin-mattermost';
const crdName = 'mattermostaccessplugins.teleport-plugins.dev';
const group = 'teleport-plugins.dev';
const plural = 'mattermostaccessplugins';

interface PluginSpec {
  teleport: { address: string; identitySecretRef: { name: string; key?: string }; refreshIdentity?: boolean };
  mattermost: {
    url: string;
    tokenSecretRef: { name: string; key?: string };
    recipients?: string[];
    roleToRecipients?: Record<string, string[]>;
  };
  log?: { severity?: string; format?: string };
  image?: string;
}
interface Plugin {
  metadata: { name: string; generation: number; labels?: Record<string, string> };
  spec: PluginSpec;
}

const kc = loadTestKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);
const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
const ext = kc.makeApiClient(ApiextensionsV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const authz = kc.makeApiClient(AuthorizationV1Api);

// Helm keeps caches and repository config under these; a throwaway home keeps the user's untouched.
const helmHome = mkdtempSync(path.join(os.tmpdir(), 'tpm-helm-'));
const helmEnv = {
  HELM_CACHE_HOME: path.join(helmHome, 'cache'),
  HELM_CONFIG_HOME: path.join(helmHome, 'config'),
  HELM_DATA_HOME: path.join(helmHome, 'data'),
};
afterAll(() => rmSync(helmHome, { recursive: true, force: true }));

function helm(...args: string[]): string {
  return runTool('helm', args, { env: helmEnv }).stdout;
}

/** `helm upgrade`, running the chart's pre-upgrade hook Job (the CRD upgrade) as a kubelet would. */
async function helmUpgrade(namespace: string, ...args: string[]) {
  return helmRunningHookJobs(['upgrade', ...args, '--namespace', namespace], {
    namespace,
    env: helmEnv,
    cwd: repoRoot,
  });
}

/** A copy of the chart whose CRD has one more printer column: a newer chart version, as far as Helm knows. */
function chartWithNewerCrd(): string {
  const dir = path.join(mkdtempSync(path.join(helmHome, 'chart-')), 'teleport-plugin-mattermost');
  cpSync(chartDir, dir, { recursive: true });
  const file = path.join(dir, 'crds', 'mattermostaccessplugins.yaml');
  const crd = parseYaml(readFileSync(file, 'utf8')) as {
    spec: { versions: Array<{ additionalPrinterColumns: Array<Record<string, string>> }> };
  };
  crd.spec.versions[0]!.additionalPrinterColumns.push({
    name: 'Chart',
    type: 'string',
    jsonPath: '.metadata.labels.helm\\.sh/chart',
  });
  writeFileSync(file, toYaml(crd));
  return dir;
}
const columns = async (): Promise<string[]> =>
  (
    (await ext.readCustomResourceDefinition({ name: crdName })).spec.versions[0]?.additionalPrinterColumns ??
    []
  ).map((c) => c.name);

async function notFound(read: () => Promise<unknown>): Promise<boolean> {
  return read().then(
    () => false,
    (e: unknown) => {
      if (e instanceof ApiException && e.code === 404) return true;
      throw e;
    },
  );
}

async function waitUntilGone(read: () => Promise<unknown>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await notFound(read))) {
    if (Date.now() > deadline) throw new Error('timed out waiting for an object to be deleted');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function readPlugin(namespace: string): Promise<Plugin> {
  return (await custom.getNamespacedCustomObject({
    group,
    version: 'v1',
    namespace,
    plural,
    name: release,
  })) as Plugin;
}

async function can(namespace: string, sa: string, attrs: Record<string, string>): Promise<boolean> {
  const review = await authz.createSubjectAccessReview({
    body: {
      spec: {
        user: `system:serviceaccount:${namespace}:${sa}`,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
        resourceAttributes: { namespace, ...attrs },
      },
    },
  });
  return review.status?.allowed === true;
}

describe('chart teleport-plugin-mattermost on a real API server', () => {
  it('installs from the guide values in one step, upgrades CRD and recipients, uninstalls keeping the CRD', async () => {
    // A first install must create the CRD itself: drop one left by an earlier test file (the k8s tier runs
    // in band, so no other test is using it now).
    if (!(await notFound(() => ext.readCustomResourceDefinition({ name: crdName })))) {
      await ext.deleteCustomResourceDefinition({ name: crdName });
      await waitUntilGone(() => ext.readCustomResourceDefinition({ name: crdName }));
    }
    const namespace = await createTestNamespace('chart');
    const out = helm(
      'upgrade',
      '--install',
      release,
      chartDir,
      '--namespace',
      namespace,
      '--values',
      guideValues,
    );
    // NOTES tell the user what to run next.
    expect(out).toContain(`kubectl -n ${namespace} get mmplugin ${release}`);
    expect(out).toContain(`kubectl -n ${namespace} logs deploy/${release}`);

    // The CRD came from the chart's crds/ (before the templates, so the plugin could be created with it).
    const crd = await ext.readCustomResourceDefinition({ name: crdName });
    expect(crd.status?.conditions?.find((c) => c.type === 'Established')?.status).toBe('True');
    expect(crd.metadata?.managedFields?.map((f) => f.manager)).toContain('helm');

    const plugin = await readPlugin(namespace);
    expect(plugin.spec.teleport).toEqual({
      address: 'teleport.example.com:443',
      identitySecretRef: { name: 'teleport-plugin-mattermost-identity', key: 'identity' },
      refreshIdentity: true,
    });
    // toMatchObject: the API server adds the CRD's defaults (e.g. notifyRequester: false).
    expect(plugin.spec.mattermost).toMatchObject({
      url: 'https://mattermost.example.com/',
      tokenSecretRef: { name: 'teleport-plugin-mattermost-secret', key: 'mattermostToken' },
      recipients: ['alice@example.com', 'team/example-channel'],
    });
    expect(plugin.spec.mattermost.roleToRecipients).toBeUndefined();
    expect(plugin.spec.log).toEqual({ severity: 'INFO', format: 'text' });

    const token = await core.readNamespacedSecret({ namespace, name: 'teleport-plugin-mattermost-secret' });
    expect(Buffer.from(token.data?.mattermostToken ?? '', 'base64').toString()).toBe('mattermosttoken');

    const operator = await apps.readNamespacedDeployment({ namespace, name: `${release}-operator` });
    const container = operator.spec?.template.spec?.containers[0];
    expect(container?.args).toEqual(expect.arrayContaining(['operator', `--namespace=${namespace}`]));
    expect(container?.securityContext?.runAsNonRoot).toBe(true);
    expect(container?.readinessProbe?.httpGet?.path).toBe('/readyz');

    // Least privilege, as the API server's authorizer sees the operator's ServiceAccount.
    const sa = `${release}-operator`;
    const crs = { group, resource: plural };
    expect(await can(namespace, sa, { ...crs, verb: 'watch' })).toBe(true);
    expect(await can(namespace, sa, { ...crs, verb: 'patch', subresource: 'status' })).toBe(true);
    expect(await can(namespace, sa, { group: 'apps', resource: 'deployments', verb: 'patch' })).toBe(true);
    expect(await can(namespace, sa, { resource: 'configmaps', verb: 'create' })).toBe(true);
    expect(await can(namespace, sa, { resource: 'secrets', verb: 'watch' })).toBe(true);
    expect(await can(namespace, sa, { resource: 'events', verb: 'create' })).toBe(true);
    expect(
      await can(namespace, sa, { group: 'coordination.k8s.io', resource: 'leases', verb: 'update' }),
    ).toBe(true);
    // Secrets: create (the review signing key; tbot's output Secret), update/patch (so the operator may grant
    // tbot's Role those rights on its one Secret), never delete.
    expect(await can(namespace, sa, { resource: 'secrets', verb: 'create' })).toBe(true);
    expect(await can(namespace, sa, { resource: 'secrets', verb: 'update' })).toBe(true);
    expect(await can(namespace, sa, { resource: 'secrets', verb: 'delete' })).toBe(false);
    expect(await can(namespace, sa, { resource: 'pods', verb: 'delete' })).toBe(false);
    expect(await can(namespace, sa, { ...crs, verb: 'delete' })).toBe(false);
    expect(await can('kube-system', sa, { group: 'apps', resource: 'deployments', verb: 'patch' })).toBe(
      false,
    );
    expect(await can(namespace, sa, { group: 'apps', resource: 'deployments', verb: 'delete' })).toBe(false);
    expect(await can(namespace, sa, { ...crs, verb: 'update' })).toBe(false);
    // The same rules as the operator's own manifests (operator/controller/rbac/role.yaml), which its tests run
    // the operator with: the chart grants neither more nor less.
    const manifests = parseAllDocuments(
      readFileSync(path.join(repoRoot, 'operator', 'controller', 'rbac', 'role.yaml'), 'utf8'),
    ).map((d) => d.toJSON() as { kind: string; metadata: { name: string }; rules?: unknown[] });
    const roles = manifests.filter((m) => m.kind === 'Role');
    const mainRules = roles.find((r) => !r.metadata.name.endsWith('leader-election'))?.rules;
    const leaseRules = roles.find((r) => r.metadata.name.endsWith('leader-election'))?.rules;
    expect(mainRules).toBeDefined();
    expect((await rbac.readNamespacedRole({ namespace, name: sa })).rules).toEqual(mainRules);
    expect((await rbac.readNamespacedRole({ namespace, name: `${sa}-leader-election` })).rules).toEqual(
      leaseRules,
    );

    // Upgrade to a newer chart with changed recipients: the pre-upgrade hook applies the newer CRD (as its own
    // least-privilege ServiceAccount), and the plugin's spec (what the operator renders) follows the values.
    expect(await columns()).not.toContain('Chart');
    const { jobs } = await helmUpgrade(
      namespace,
      release,
      chartWithNewerCrd(),
      '--values',
      guideValues,
      '--set-json',
      'mattermost.recipients=["ops/access-requests","bob@example.com"]',
    );
    expect(jobs).toEqual([
      expect.objectContaining({
        name: `${release}-crd-upgrade`,
        status: 0,
        output: expect.stringContaining(`Applied CustomResourceDefinition ${crdName}`),
      }),
    ]);
    expect(await columns()).toContain('Chart');
    const upgraded = await readPlugin(namespace);
    expect(upgraded.spec.mattermost.recipients).toEqual(['ops/access-requests', 'bob@example.com']);
    expect(upgraded.metadata.generation).toBe(plugin.metadata.generation + 1);
    // The hook cleaned up after itself (hook-succeeded), including its cluster-wide RBAC.
    expect(
      await notFound(() =>
        rbac.readClusterRole({ name: `${release}-${namespace}-crd-upgrade`.slice(0, 200) }),
      ),
    ).toBe(true);

    // Uninstall: the CRD stays (Helm never deletes crds/), everything the release created goes.
    helm('uninstall', release, '--namespace', namespace);
    expect(await notFound(() => ext.readCustomResourceDefinition({ name: crdName }))).toBe(false);
    expect(await notFound(() => readPlugin(namespace))).toBe(true);
    expect(
      await notFound(() =>
        core.readNamespacedSecret({ namespace, name: 'teleport-plugin-mattermost-secret' }),
      ),
    ).toBe(true);
    expect(
      await notFound(() => apps.readNamespacedDeployment({ namespace, name: `${release}-operator` })),
    ).toBe(true);
    expect(await notFound(() => rbac.readNamespacedRole({ namespace, name: `${release}-operator` }))).toBe(
      true,
    );
    expect(await notFound(() => core.readNamespacedServiceAccount({ namespace, name: sa }))).toBe(true);
  }, 120_000);

  it('uses an existing token Secret without creating one, and leaves it on uninstall', async () => {
    const namespace = await createTestNamespace('chart-existing');
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'my-mattermost-secret' }, stringData: { token: 'from-my-secret' } },
    });
    helm(
      'upgrade',
      '--install',
      release,
      chartDir,
      '--namespace',
      namespace,
      '--values',
      guideValues,
      '--set',
      'mattermost.tokenFromSecret=my-mattermost-secret,mattermost.tokenSecretPath=token',
    );
    const plugin = await readPlugin(namespace);
    expect(plugin.spec.mattermost.tokenSecretRef).toEqual({ name: 'my-mattermost-secret', key: 'token' });
    expect(
      await notFound(() =>
        core.readNamespacedSecret({ namespace, name: 'teleport-plugin-mattermost-secret' }),
      ),
    ).toBe(true);
    helm('uninstall', release, '--namespace', namespace);
    // The user's Secret is not the chart's to delete.
    expect(await notFound(() => core.readNamespacedSecret({ namespace, name: 'my-mattermost-secret' }))).toBe(
      false,
    );
  }, 120_000);

  it('`helm test` passes when the watcher answers /readyz, and fails with its reason when not', async () => {
    const namespace = await createTestNamespace('chart-helm-test');
    helm('upgrade', '--install', release, chartDir, '--namespace', namespace, '--values', guideValues);
    // The Service the test pod calls selects the watcher pods by the labels the operator gives them.
    const service = await core.readNamespacedService({ namespace, name: `${release}-health` });
    expect(service.spec?.selector).toEqual({
      'app.kubernetes.io/name': 'teleport-plugin-mattermost',
      'app.kubernetes.io/instance': release,
    });

    // A stand-in for the watcher's health endpoint; the test pod's Service URL is pointed at it.
    let readiness: { code: number; body: string } = { code: 200, body: 'ok\n' };
    const watcher = http.createServer((req, res) => {
      if (req.url === '/readyz') res.writeHead(readiness.code).end(readiness.body);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => watcher.listen(0, '127.0.0.1', resolve));
    const { port } = watcher.address() as AddressInfo;
    const urls: string[] = [];
    const rewrite = (name: string, value: string): string => {
      if (name !== 'READYZ_URL') return value;
      urls.push(value);
      return value.replace(/^http:\/\/[^/]+/, `http://127.0.0.1:${port}`);
    };
    try {
      const passed = await helmTestRunningPods([release, '--namespace', namespace], {
        namespace,
        env: helmEnv,
        cwd: repoRoot,
        rewrite,
      });
      expect(passed.status).toBe(0);
      expect(passed.stdout).toContain('Phase:          Succeeded');
      expect(passed.pods.map((p) => p.output)).toEqual([expect.stringContaining(': 200 ok')]);
      expect(urls).toEqual([`http://${release}-health.${namespace}.svc:8081/readyz`]);

      readiness = { code: 503, body: 'not ready: Teleport: connection refused\n' };
      const failed = await helmTestRunningPods([release, '--namespace', namespace], {
        namespace,
        env: helmEnv,
        cwd: repoRoot,
        rewrite,
      });
      expect(failed.status).not.toBe(0);
      expect(failed.pods.map((p) => p.output)).toEqual([
        expect.stringContaining(': 503 not ready: Teleport: connection refused'),
      ]);
    } finally {
      watcher.close();
      helm('uninstall', release, '--namespace', namespace);
    }
  }, 120_000);

  it("runs the image of this version: Chart.yaml appVersion is package.json's version", () => {
    const chart = parseYaml(readFileSync(path.join(chartDir, 'Chart.yaml'), 'utf8')) as {
      appVersion: string;
    };
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect(chart.appVersion).toBe(pkg.version);
  });

  it('ships a byte-identical copy of crds/mattermostaccessplugins.yaml', () => {
    expect(readFileSync(path.join(chartDir, 'crds', 'mattermostaccessplugins.yaml'), 'utf8')).toBe(
      readFileSync(path.join(repoRoot, 'crds', 'mattermostaccessplugins.yaml'), 'utf8'),
    );
  });
});
