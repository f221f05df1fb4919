// Proves the harness gives the real API-server behaviour the operator relies on: structural-schema
// validation with the schema's own message, server-side apply, the status subresource and watch events.
import {
  ApiException,
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  type KubernetesObject,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTestNamespace, loadTestKubeConfig, toolPath } from './harness.js';

const group = 'smoke.teleport-plugins.dev';
const plural = 'widgets';
const SIZE_MESSAGE = 'spec.size must not exceed spec.maxSize';

interface Widget extends KubernetesObject {
  spec: { size: number; maxSize: number; color?: string };
  status?: { phase?: string; observedGeneration?: number };
}

const crd: V1CustomResourceDefinition = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `${plural}.${group}` },
  spec: {
    group,
    scope: 'Namespaced',
    names: { plural, singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: {
                type: 'object',
                required: ['size', 'maxSize'],
                properties: {
                  size: { type: 'integer', minimum: 1 },
                  maxSize: { type: 'integer', minimum: 1 },
                  color: { type: 'string', _enum: ['red', 'blue'] },
                },
                x_kubernetes_validations: [{ rule: 'self.size <= self.maxSize', message: SIZE_MESSAGE }],
              },
              status: {
                type: 'object',
                properties: { phase: { type: 'string' }, observedGeneration: { type: 'integer' } },
              },
            },
          },
        },
      },
    ],
  },
};

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('test cluster (etcd + kube-apiserver)', () => {
  const kc = loadTestKubeConfig();
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const objects = KubernetesObjectApi.makeApiClient(kc);
  let namespace: string;

  beforeAll(async () => {
    await ext.createCustomResourceDefinition({ body: crd });
    await waitFor('the CRD to be established', async () => {
      const live = await ext.readCustomResourceDefinition({ name: crd.metadata!.name! });
      return live.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')
        ? true
        : undefined;
    });
    namespace = await createTestNamespace('smoke');
  });

  it('serves a namespace per test and an admin with full rights', async () => {
    const ns = await kc.makeApiClient(CoreV1Api).readNamespace({ name: namespace });
    expect(ns.status?.phase).toBe('Active');
    expect(toolPath('kube-apiserver')).toMatch(/kube-apiserver$/);
  });

  async function createRejection(name: string, spec: Widget['spec']): Promise<string> {
    const body: Widget = { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name, namespace }, spec };
    const err = await custom
      .createNamespacedCustomObject({ group, version: 'v1', namespace, plural, body })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ApiException);
    const apiErr = err as ApiException<unknown>;
    expect(apiErr.code).toBe(422);
    return typeof apiErr.body === 'string' ? apiErr.body : JSON.stringify(apiErr.body);
  }

  it('rejects an object that violates the structural schema with the schema message', async () => {
    // A CEL rule's own message ...
    expect(await createRejection('too-big', { size: 9, maxSize: 5 })).toContain(SIZE_MESSAGE);
    // ... and the OpenAPI checks (CEL rules are skipped while these fail).
    const enumError = await createRejection('bad-color', { size: 1, maxSize: 5, color: 'green' });
    expect(enumError).toContain('spec.color: Unsupported value: \\"green\\"');
  });

  it('applies with server-side apply, patches /status and delivers both over a watch', async () => {
    const events: Array<{ type: string; obj: Widget }> = [];
    const watchErrors: unknown[] = [];
    const abort = await new Watch(kc).watch(
      `/apis/${group}/v1/namespaces/${namespace}/${plural}`,
      { allowWatchBookmarks: false },
      (type, obj: Widget) => events.push({ type, obj }),
      (err) => {
        if (err) watchErrors.push(err);
      },
    );
    try {
      const desired: Widget = {
        apiVersion: `${group}/v1`,
        kind: 'Widget',
        metadata: { name: 'w1', namespace },
        spec: { size: 2, maxSize: 5, color: 'red' },
      };
      const applied = await objects.patch(
        desired,
        undefined,
        undefined,
        'smoke-test',
        true,
        PatchStrategy.ServerSideApply,
      );
      expect(applied.spec).toEqual({ size: 2, maxSize: 5, color: 'red' });
      const managers = applied.metadata?.managedFields ?? [];
      expect(managers).toEqual(
        expect.arrayContaining([expect.objectContaining({ manager: 'smoke-test', operation: 'Apply' })]),
      );

      // Re-applying the same intent is a no-op: same resourceVersion.
      const again = await objects.patch(
        desired,
        undefined,
        undefined,
        'smoke-test',
        true,
        PatchStrategy.ServerSideApply,
      );
      expect(again.metadata?.resourceVersion).toBe(applied.metadata?.resourceVersion);

      const patched = (await custom.patchNamespacedCustomObjectStatus(
        {
          group,
          version: 'v1',
          namespace,
          plural,
          name: 'w1',
          body: { status: { phase: 'Ready', observedGeneration: applied.metadata?.generation } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )) as Widget;
      expect(patched.status).toEqual({ phase: 'Ready', observedGeneration: 1 });
      // Status writes go through the subresource and do not bump the generation.
      expect(patched.metadata?.generation).toBe(1);

      const seen = await waitFor('ADDED and the status MODIFIED event', async () =>
        events.some((e) => e.type === 'ADDED' && e.obj.metadata?.name === 'w1') &&
        events.some((e) => e.type === 'MODIFIED' && e.obj.status?.phase === 'Ready')
          ? events
          : undefined,
      );
      expect(seen.map((e) => e.type)).toEqual(['ADDED', 'MODIFIED']);
      expect(watchErrors).toEqual([]);
    } finally {
      abort.abort();
    }
  });

  it('answers a watch from a too-old resourceVersion with 410 Gone (the relist signal)', async () => {
    const events: Array<{ type: string; obj: { code?: number; reason?: string } }> = [];
    let doneErr: unknown = 'not done';
    let resolveDone = (): void => {};
    const finished = new Promise<void>((resolve) => (resolveDone = resolve));
    const abort = await new Watch(kc).watch(
      `/apis/${group}/v1/namespaces/${namespace}/${plural}`,
      { resourceVersion: '1' },
      (type, obj: { code?: number; reason?: string }) => events.push({ type, obj }),
      (err) => {
        doneErr = err;
        resolveDone();
      },
    );
    // A guard only: the server ends this watch right away.
    const guard = setTimeout(() => abort.abort(), 10_000);
    await finished;
    clearTimeout(guard);
    // The API server reports it in-band: an ERROR event carrying a Status with code 410 (reason Expired).
    const gone = events.find((e) => e.type === 'ERROR');
    expect(gone?.obj).toEqual(expect.objectContaining({ code: 410, reason: 'Expired' }));
    expect(doneErr).not.toBe('not done'); // and the server ended the watch
  });

  it('garbage-collects dependents of a deleted owner (kube-controller-manager)', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const owner = await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'owner' } } });
    await core.createNamespacedConfigMap({
      namespace,
      body: {
        metadata: {
          name: 'dependent',
          ownerReferences: [
            {
              apiVersion: 'v1',
              kind: 'ConfigMap',
              name: 'owner',
              uid: owner.metadata!.uid!,
              controller: true,
            },
          ],
        },
      },
    });
    await core.deleteNamespacedConfigMap({ namespace, name: 'owner' });
    await waitFor(
      'the garbage collector to delete the dependent',
      async () =>
        core.readNamespacedConfigMap({ namespace, name: 'dependent' }).then(
          () => undefined,
          (e: unknown) => (e instanceof ApiException && e.code === 404 ? true : undefined),
        ),
      60_000,
    );
  }, 70_000);
});
