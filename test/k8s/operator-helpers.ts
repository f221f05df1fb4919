// Helpers shared by the operator's tests against the harness kube-apiserver.
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ApiextensionsV1Api,
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import {
  GROUP,
  PLURAL,
  VERSION,
  API_VERSION,
  KIND,
  FIELD_MANAGER,
} from '../../operator/controller/defaults.js';
import { runOperator, type OperatorHandle, type OperatorOptions } from '../../operator/controller/run.js';
import type { MattermostAccessPlugin, MattermostAccessPluginSpec } from '../../operator/controller/types.js';
import { silentLogger } from '../../operator/observability/logger.js';
import { identityFileText, TestCA } from '../teleport-server/ca.js';

/** The CRD file, from the sources (test/k8s) or the build output (dist/test/k8s). */
export const CRD_PATH = ['../../crds/', '../../../crds/']
  .map((dir) => new URL(`${dir}mattermostaccessplugins.yaml`, import.meta.url))
  .find((url) => existsSync(url))!;
const SSA = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);

/** Installs (server-side applies) the CRD and waits until it is Established. */
export async function installCrd(kc: KubeConfig): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const crd = parseYaml(readFileSync(CRD_PATH, 'utf8')) as V1CustomResourceDefinition;
  await api.patchCustomResourceDefinition(
    { name: crd.metadata!.name!, body: crd, fieldManager: 'operator-tests', force: true },
    SSA,
  );
  await waitFor('CRD established', async () => {
    const live = await api.readCustomResourceDefinition({ name: crd.metadata!.name! });
    return live.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')
      ? true
      : undefined;
  });
}

/** Polls `fn` until it returns a value other than undefined (or throws the last error on timeout). */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    }
    await sleep(100);
  }
}

export const ca = TestCA.create('example.com');

export function identityText(ttlMs = 3600_000, notBefore = new Date(Date.now() - 60_000)): string {
  return identityFileText({ ca, ttlMs, notBefore, user: 'access-plugin' });
}

export async function putSecret(
  kc: KubeConfig,
  namespace: string,
  name: string,
  data: Record<string, string>,
): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.patchNamespacedSecret(
    {
      name,
      namespace,
      fieldManager: 'operator-tests',
      force: true,
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name, namespace },
        stringData: data,
        type: 'Opaque',
      },
    },
    SSA,
  );
}

export function baseSpec(overrides: Partial<MattermostAccessPluginSpec> = {}): MattermostAccessPluginSpec {
  return {
    teleport: {
      address: 'teleport.example.com:443',
      identitySecretRef: { name: 'teleport-plugin-mattermost-identity' },
    },
    mattermost: {
      url: 'https://mattermost.example.com',
      tokenSecretRef: { name: 'mattermost-token' },
      recipients: ['alice@example.com', 'team/example-channel'],
    },
    ...overrides,
  };
}

/**
 * Creates a MattermostAccessPlugin as it is given, without any defaulting of ours (for the API server's
 * validation: the spec may be anything). Rejects with the API server's answer.
 */
export function createPlugin(
  kc: KubeConfig,
  namespace: string,
  name: string,
  spec: unknown,
): Promise<unknown> {
  return kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PLURAL,
    body: { apiVersion: API_VERSION, kind: KIND, metadata: { name }, spec },
  });
}

export async function applyPlugin(
  kc: KubeConfig,
  namespace: string,
  name: string,
  spec: MattermostAccessPluginSpec,
): Promise<void> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  await custom.patchNamespacedCustomObject(
    {
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      name,
      fieldManager: 'operator-tests',
      force: true,
      body: { apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace }, spec },
    },
    SSA,
  );
}

export async function getPlugin(
  kc: KubeConfig,
  namespace: string,
  name: string,
): Promise<MattermostAccessPlugin> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  return (await custom.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PLURAL,
    name,
  })) as MattermostAccessPlugin;
}

export function condition(cr: MattermostAccessPlugin, type: string) {
  return cr.status?.conditions?.find((c) => c.type === type);
}

/** Resolves with the exception an API call threw (fails when it did not throw). */
export async function apiError(p: Promise<unknown>): Promise<ApiException<unknown>> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiException) return err;
    throw err;
  }
  throw new Error('expected the API server to reject the request');
}

/** Sum of the operator's write counter, leaving out Lease renewals. */
export async function writesExcludingLeases(counter: {
  get(): Promise<{ values: Array<{ value: number; labels: Record<string, unknown> }> }>;
}): Promise<number> {
  const { values } = await counter.get();
  return values.filter((v) => v.labels.resource !== 'leases').reduce((n, v) => n + v.value, 0);
}

export { FIELD_MANAGER };

/**
 * A new namespace with the default identity and token Secrets and `count` plugins named plugin-0…,
 * applied 25 at a time (the scale benchmarks' starting point).
 */
export async function seedNamespaceWithPlugins(
  kc: KubeConfig,
  namespace: string,
  count: number,
): Promise<void> {
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
  await putSecret(kc, namespace, 'teleport-plugin-mattermost-identity', {
    identity: identityText(24 * 3600_000),
  });
  await putSecret(kc, namespace, 'mattermost-token', { token: 'bot-token-1234567890' });
  for (let i = 0; i < count; i += 25) {
    await Promise.all(
      Array.from({ length: Math.min(25, count - i) }, (_, j) =>
        applyPlugin(kc, namespace, `plugin-${i + j}`, baseSpec()),
      ),
    );
  }
}

/** The operator as the k8s tests run it: one namespace, an ephemeral metrics port, no leader election,
 *  a placeholder watcher image and a silent log; `more` adds or overrides options. */
export function startTestOperator(
  kc: KubeConfig,
  namespace: string,
  more: Partial<OperatorOptions> = {},
): Promise<OperatorHandle> {
  return runOperator(
    {
      kubeConfig: kc,
      namespace,
      metricsAddr: '127.0.0.1:0',
      leaderElect: false,
      watcherImage: 'registry.example.test/teleport-plugin-mattermost:1.2.3',
      ...more,
    },
    silentLogger(),
  );
}
