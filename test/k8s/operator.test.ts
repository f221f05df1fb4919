// The operator against a real kube-apiserver (harness: etcd + kube-apiserver + garbage collector, no
// Deployment controller, so tests write Deployment status themselves).
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  Watch,
  type KubeConfig,
  type V1Deployment,
} from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseConfigText } from '../../operator/config/load.js';
import {
  CONFIG_HASH_ANNOTATION,
  CONFIG_PATH,
  GROUP,
  IDENTITY_DIR,
  PLURAL,
  VERSION,
} from '../../operator/controller/defaults.js';
import type { OperatorHandle } from '../../operator/controller/run.js';
import { createTestNamespace, loadTestKubeConfig } from './harness.js';
import {
  apiError,
  applyPlugin,
  createPlugin,
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
let operator: OperatorHandle;
let core: CoreV1Api;
let apps: AppsV1Api;

beforeAll(async () => {
  kc = loadTestKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  apps = kc.makeApiClient(AppsV1Api);
  await installCrd(kc);
  ns = await createTestNamespace('operator');
  operator = await startTestOperator(kc, ns, {
    // A fast resync, so the idle test also proves that periodic reconciles of unchanged objects write nothing.
    resyncMs: 1000,
  });
}, 60_000);

afterAll(async () => {
  await operator?.stop();
});

async function getDeployment(name: string): Promise<V1Deployment | undefined> {
  try {
    return await apps.readNamespacedDeployment({ name, namespace: ns });
  } catch {
    return undefined;
  }
}

/** Plays the Deployment controller: marks the current generation rolled out and Available. */
async function markAvailable(name: string, available: boolean): Promise<void> {
  const d = (await getDeployment(name))!;
  d.status = {
    observedGeneration: d.metadata!.generation,
    replicas: 1,
    readyReplicas: available ? 1 : 0,
    availableReplicas: available ? 1 : 0,
    updatedReplicas: 1,
    conditions: [
      {
        type: 'Available',
        status: available ? 'True' : 'False',
        reason: available ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable',
        message: available
          ? 'Deployment has minimum availability.'
          : 'Deployment does not have minimum availability.',
        lastTransitionTime: new Date(),
        lastUpdateTime: new Date(),
      },
    ],
  };
  await apps.replaceNamespacedDeploymentStatus({ name, namespace: ns, body: d });
}

async function setupSecrets(identity = identityText()): Promise<void> {
  await putSecret(kc, ns, 'teleport-plugin-mattermost-identity', { identity });
  await putSecret(kc, ns, 'mattermost-token', { token: 'bot-token-1234567890' });
}

describe('operator reconciles a MattermostAccessPlugin', () => {
  const name = 'mattermost';

  beforeAll(async () => {
    await setupSecrets();
    await applyPlugin(kc, ns, name, baseSpec());
  });

  it('creates the ConfigMap and Deployment with owner references, mounts, probes, security and config hash', async () => {
    const cr = await getPlugin(kc, ns, name);
    const d = await waitFor('Deployment', () => getDeployment(name));
    const cm = await waitFor('ConfigMap', () => core.readNamespacedConfigMap({ name, namespace: ns }));
    for (const obj of [d, cm]) {
      expect(obj.metadata?.ownerReferences).toEqual([
        expect.objectContaining({
          kind: 'MattermostAccessPlugin',
          name,
          uid: cr.metadata.uid,
          controller: true,
          blockOwnerDeletion: true,
        }),
      ]);
      expect(obj.metadata?.labels).toMatchObject({
        'app.kubernetes.io/name': 'teleport-plugin-mattermost',
        'app.kubernetes.io/instance': name,
        'app.kubernetes.io/managed-by': 'teleport-mattermost-operator',
      });
    }
    const pod = d.spec!.template.spec!;
    const container = pod.containers[0]!;
    expect(container.image).toBe('registry.example.test/teleport-plugin-mattermost:1.2.3');
    expect(container.args).toEqual(['start', '-c', CONFIG_PATH]);
    const identityMount = container.volumeMounts!.find((m) => m.name === 'teleport-identity')!;
    expect(identityMount.mountPath).toBe(IDENTITY_DIR);
    expect(container.volumeMounts!.every((m) => m.subPath === undefined)).toBe(true);
    expect(pod.volumes!.find((v) => v.name === 'teleport-identity')!.secret!.secretName).toBe(
      'teleport-plugin-mattermost-identity',
    );
    expect(pod.volumes!.find((v) => v.name === 'mattermost-token')!.secret!.secretName).toBe(
      'mattermost-token',
    );
    expect(container.readinessProbe!.httpGet!.path).toBe('/readyz');
    expect(container.livenessProbe!.httpGet!.path).toBe('/healthz');
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(d.spec!.template.metadata!.annotations![CONFIG_HASH_ANNOTATION]).toMatch(/^[0-9a-f]{32}$/);

    const toml = cm.data!['teleport-mattermost.toml']!;
    expect(toml).not.toContain('bot-token-1234567890');
    const { config } = parseConfigText(toml, CONFIG_PATH, { readTokenFile: false });
    expect(config.teleport).toMatchObject({
      addr: 'teleport.example.com:443',
      identity: `${IDENTITY_DIR}/identity`,
      refreshIdentity: true,
    });
    expect(config.mattermost.tokenSource).toMatch(/^\//);
    expect(config.roleToRecipients).toEqual({ '*': ['alice@example.com', 'team/example-channel'] });
  });

  it('reports status: valid config and identity, not Ready until the Deployment is Available', async () => {
    const cr = await waitFor('status', async () => {
      const c = await getPlugin(kc, ns, name);
      return condition(c, 'IdentityValid') ? c : undefined;
    });
    expect(cr.status).toMatchObject({
      observedGeneration: cr.metadata.generation,
      deploymentName: name,
      recipientCount: 2,
    });
    expect(condition(cr, 'ConfigValid')).toMatchObject({ status: 'True', reason: 'ConfigRendered' });
    expect(condition(cr, 'IdentityValid')).toMatchObject({ status: 'True', reason: 'IdentityValid' });
    expect(condition(cr, 'IdentityValid')!.message).toContain('example.com');
    expect(Date.parse(cr.status!.identityExpiresAt!)).toBeGreaterThan(Date.now());
    expect(condition(cr, 'Available')).toMatchObject({ status: 'False' });
    expect(condition(cr, 'Ready')).toMatchObject({ status: 'False', reason: 'DeploymentNotAvailable' });
    expect((cr.status as Record<string, unknown>).phase).toBeUndefined();

    await markAvailable(name, true);
    const ready = await waitFor('Ready=True', async () => {
      const c = await getPlugin(kc, ns, name);
      return condition(c, 'Ready')?.status === 'True' ? c : undefined;
    });
    expect(condition(ready, 'Available')).toMatchObject({ status: 'True', reason: 'DeploymentAvailable' });

    await markAvailable(name, false);
    await waitFor('Ready=False again', async () => {
      const c = await getPlugin(kc, ns, name);
      return condition(c, 'Ready')?.status === 'False' &&
        condition(c, 'Available')?.reason === 'DeploymentUnavailable'
        ? c
        : undefined;
    });
    await markAvailable(name, true);
  });

  it('records Events on the resource', async () => {
    const events = await waitFor('events', async () => {
      const list = await core.listNamespacedEvent({
        namespace: ns,
        fieldSelector: `involvedObject.name=${name}`,
      });
      return list.items.some((e) => e.reason === 'DeploymentCreated') ? list.items : undefined;
    });
    expect(events.every((e) => e.involvedObject.kind === 'MattermostAccessPlugin')).toBe(true);
  });

  it('makes no API writes while nothing changes', async () => {
    await waitFor('Ready', async () =>
      condition(await getPlugin(kc, ns, name), 'Ready')?.status === 'True' ? true : undefined,
    );
    await sleep(1000);
    const before = await writesExcludingLeases(operator.metrics.apiWrites);
    const reconcilesBefore = (await operator.metrics.reconciles.get()).values.reduce(
      (n, v) => n + v.value,
      0,
    );
    // Also watch the namespace's objects: any write that changed something would show up as an event.
    const seen: string[] = [];
    const aborts = await Promise.all(
      [
        `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}`,
        `/apis/apps/v1/namespaces/${ns}/deployments`,
        `/api/v1/namespaces/${ns}/configmaps`,
      ].map(async (path) => {
        const list = path.includes(PLURAL)
          ? ((await kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({
              group: GROUP,
              version: VERSION,
              namespace: ns,
              plural: PLURAL,
            })) as {
              metadata: { resourceVersion: string };
            })
          : path.includes('deployments')
            ? await apps.listNamespacedDeployment({ namespace: ns })
            : await core.listNamespacedConfigMap({ namespace: ns });
        return new Watch(kc).watch(
          path,
          { resourceVersion: list.metadata!.resourceVersion },
          (type, obj: { metadata: { name: string } }) => seen.push(`${type} ${path} ${obj.metadata.name}`),
          () => {},
        );
      }),
    );
    await sleep(4000);
    for (const a of aborts) a.abort();
    expect(seen).toEqual([]);
    expect(await writesExcludingLeases(operator.metrics.apiWrites)).toBe(before);
    // The resyncs did run meanwhile (so this is not zero writes because nothing ran).
    const reconcilesAfter = (await operator.metrics.reconciles.get()).values.reduce((n, v) => n + v.value, 0);
    expect(reconcilesAfter).toBeGreaterThan(reconcilesBefore);
  });

  it('rolls the pods when the spec changes (new config hash)', async () => {
    const before = (await getDeployment(name))!;
    const hashBefore = before.spec!.template.metadata!.annotations![CONFIG_HASH_ANNOTATION];
    await applyPlugin(kc, ns, name, baseSpec({ log: { severity: 'DEBUG', format: 'json' } }));
    const after = await waitFor('new hash', async () => {
      const d = await getDeployment(name);
      return d?.spec!.template.metadata!.annotations![CONFIG_HASH_ANNOTATION] !== hashBefore ? d : undefined;
    });
    expect(after.metadata!.generation).toBeGreaterThan(before.metadata!.generation!);
    const cm = await core.readNamespacedConfigMap({ name, namespace: ns });
    expect(cm.data!['teleport-mattermost.toml']).toContain('severity = "DEBUG"');
    const cr = await waitFor('observedGeneration', async () => {
      const c = await getPlugin(kc, ns, name);
      return c.status?.observedGeneration === c.metadata.generation ? c : undefined;
    });
    expect(cr.status!.configHash).toBe(after.spec!.template.metadata!.annotations![CONFIG_HASH_ANNOTATION]);
    await markAvailable(name, true);
  });

  it('does not roll the pods when only the identity Secret rotates, but updates the expiry', async () => {
    const before = (await getDeployment(name))!;
    const crBefore = await getPlugin(kc, ns, name);
    await putSecret(kc, ns, 'teleport-plugin-mattermost-identity', { identity: identityText(5 * 3600_000) });
    const cr = await waitFor('new expiry', async () => {
      const c = await getPlugin(kc, ns, name);
      return c.status?.identityExpiresAt !== crBefore.status?.identityExpiresAt ? c : undefined;
    });
    expect(Date.parse(cr.status!.identityExpiresAt!)).toBeGreaterThan(Date.now() + 4 * 3600_000);
    const after = (await getDeployment(name))!;
    expect(after.metadata!.generation).toBe(before.metadata!.generation);
    expect(after.spec!.template.metadata!.annotations).toEqual(before.spec!.template.metadata!.annotations);
  });

  it('reports an expired identity with its expiry', async () => {
    await putSecret(kc, ns, 'teleport-plugin-mattermost-identity', {
      identity: identityText(3600_000, new Date(Date.now() - 2 * 3600_000)),
    });
    const cr = await waitFor('IdentityExpired', async () => {
      const c = await getPlugin(kc, ns, name);
      return condition(c, 'IdentityValid')?.reason === 'IdentityExpired' ? c : undefined;
    });
    expect(condition(cr, 'IdentityValid')!.status).toBe('False');
    expect(condition(cr, 'IdentityValid')!.message).toContain('expired at');
    expect(Date.parse(cr.status!.identityExpiresAt!)).toBeLessThan(Date.now());
    expect(condition(cr, 'Ready')).toMatchObject({ status: 'False', reason: 'IdentityInvalid' });
    await putSecret(kc, ns, 'teleport-plugin-mattermost-identity', { identity: identityText() });
    await waitFor('valid again', async () =>
      condition(await getPlugin(kc, ns, name), 'IdentityValid')?.status === 'True' ? true : undefined,
    );
  });

  it('leaves the Deployment alone when the spec is invalid and says why', async () => {
    const before = (await getDeployment(name))!;
    await applyPlugin(
      kc,
      ns,
      name,
      baseSpec({
        mattermost: {
          url: 'https://mattermost.example.com',
          tokenSecretRef: { name: 'mattermost-token' },
          recipients: ['alice@example.com'],
          roleToRecipients: { '*': ['team/ops'] },
        },
      }),
    );
    const cr = await waitFor('ConfigValid=False', async () => {
      const c = await getPlugin(kc, ns, name);
      return condition(c, 'ConfigValid')?.status === 'False' ? c : undefined;
    });
    expect(condition(cr, 'ConfigValid')).toMatchObject({ reason: 'InvalidSpec' });
    expect(condition(cr, 'ConfigValid')!.message).toContain('keep one of them');
    expect(condition(cr, 'Ready')).toMatchObject({ status: 'False', reason: 'ConfigInvalid' });
    const after = (await getDeployment(name))!;
    expect(after.metadata!.generation).toBe(before.metadata!.generation);
    // Back to a valid spec.
    await applyPlugin(kc, ns, name, baseSpec({ log: { severity: 'DEBUG', format: 'json' } }));
    await waitFor('ConfigValid=True', async () =>
      condition(await getPlugin(kc, ns, name), 'ConfigValid')?.status === 'True' ? true : undefined,
    );
  });
});

describe('health and metrics endpoints', () => {
  it('serves /healthz, /readyz and /metrics with reconcile, queue and write metrics', async () => {
    const base = `http://127.0.0.1:${operator.metricsPort}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    for (const name of [
      'teleport_mattermost_operator_reconcile_total{result="',
      'teleport_mattermost_operator_reconcile_duration_seconds_bucket',
      'teleport_mattermost_operator_workqueue_depth',
      'teleport_mattermost_operator_reconcile_errors_total',
      'teleport_mattermost_operator_api_writes_total{resource="deployments",verb="apply"}',
    ]) {
      expect(metrics).toContain(name);
    }
  });
});

describe('API server validation', () => {
  it('rejects invalid resources with readable messages', async () => {
    const err = await apiError(
      createPlugin(kc, ns, 'bad', {
        teleport: { address: 'teleport.example.com', identitySecretRef: { name: 'id' } },
        mattermost: { url: 'mattermost.example.com', tokenSecretRef: { name: 't' }, recipients: ['bob'] },
      }),
    );
    expect(err.code).toBe(422);
    const body = String(err.body);
    expect(body).toContain('spec.teleport.address');
    expect(body).toContain('must be host:port');
    expect(body).toContain('must be an http(s) URL');
    expect(body).toContain('must be \\"team/channel\\" or a user\'s email address');

    const severity = await apiError(
      createPlugin(kc, ns, 'bad2', { ...baseSpec(), log: { severity: 'LOUD' } }),
    );
    expect(String(severity.body)).toContain('spec.log.severity: Unsupported value: \\"LOUD\\"');
  });
});

describe('missing Secrets', () => {
  it('reports a missing identity Secret, a missing key, and recovers when it appears', async () => {
    const name = 'late';
    await putSecret(kc, ns, 'late-token', { token: 'another-token-123456' });
    await applyPlugin(
      kc,
      ns,
      name,
      baseSpec({
        teleport: { address: 'auth.teleport.svc:3025', identitySecretRef: { name: 'late-identity' } },
        mattermost: {
          url: 'https://mm.example.com',
          tokenSecretRef: { name: 'late-token' },
          recipients: ['team/ops'],
        },
      }),
    );
    const missing = await waitFor('IdentitySecretNotFound', async () => {
      const c = await getPlugin(kc, ns, name);
      return condition(c, 'IdentityValid')?.reason === 'IdentitySecretNotFound' ? c : undefined;
    });
    expect(condition(missing, 'IdentityValid')!.message).toContain(`Secret ${ns}/late-identity`);
    expect(condition(missing, 'IdentityValid')!.message).toContain('does not exist');
    // The Deployment exists anyway: the pod waits for the Secret and starts once tbot writes it.
    expect(await waitFor('Deployment', () => getDeployment(name))).toBeDefined();

    await putSecret(kc, ns, 'late-identity', { wrong: 'x' });
    const noKey = await waitFor('IdentityKeyNotFound', async () => {
      const c = await getPlugin(kc, ns, name);
      return condition(c, 'IdentityValid')?.reason === 'IdentityKeyNotFound' ? c : undefined;
    });
    expect(condition(noKey, 'IdentityValid')!.message).toContain(
      `Secret ${ns}/late-identity has no key 'identity'`,
    );

    await putSecret(kc, ns, 'late-identity', { identity: identityText() });
    await waitFor('IdentityValid', async () =>
      condition(await getPlugin(kc, ns, name), 'IdentityValid')?.status === 'True' ? true : undefined,
    );
  });

  it('reports a missing token Secret', async () => {
    const name = 'notoken';
    await applyPlugin(
      kc,
      ns,
      name,
      baseSpec({
        mattermost: {
          url: 'https://mm.example.com',
          tokenSecretRef: { name: 'absent-token' },
          recipients: ['team/ops'],
        },
      }),
    );
    const cr = await waitFor('TokenSecretNotFound', async () => {
      const c = await getPlugin(kc, ns, name);
      return condition(c, 'ConfigValid')?.reason === 'TokenSecretNotFound' ? c : undefined;
    });
    expect(condition(cr, 'ConfigValid')!.message).toContain(`Secret ${ns}/absent-token`);
  });
});

describe('deletion', () => {
  it('leaves nothing orphaned: children are owned by the CR and collected with it', async () => {
    const name = 'doomed';
    await applyPlugin(kc, ns, name, baseSpec());
    const d = await waitFor('Deployment', () => getDeployment(name));
    const cr = await getPlugin(kc, ns, name);
    expect(d.metadata!.ownerReferences![0]!.uid).toBe(cr.metadata.uid);
    const cm = await core.readNamespacedConfigMap({ name, namespace: ns });
    expect(cm.metadata!.ownerReferences![0]!.uid).toBe(cr.metadata.uid);
    await kc
      .makeApiClient(CustomObjectsApi)
      .deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL, name });
    // Ownership is what the garbage collector follows (its discovery of a new CRD may take a while, so
    // the cascade itself is not awaited here); the operator must not re-create children of a deleted CR.
    await waitFor('CR gone', async () => {
      try {
        await getPlugin(kc, ns, name);
        return undefined;
      } catch {
        return true;
      }
    });
    // If the collector has not got to them yet, delete them the way it would (ignoring 404).
    await apps.deleteNamespacedDeployment({ name, namespace: ns }).catch(() => undefined);
    await core.deleteNamespacedConfigMap({ name, namespace: ns }).catch(() => undefined);
    await sleep(1500);
    expect(await getDeployment(name)).toBeUndefined();
    await expect(core.readNamespacedConfigMap({ name, namespace: ns })).rejects.toMatchObject({ code: 404 });
  });
});

describe('spec.review (native Approve/Deny buttons)', () => {
  it('renders [review], opens the review port, creates the callback Service and a key Secret once', async () => {
    const name = 'reviewing';
    await applyPlugin(kc, ns, name, baseSpec({ review: { enabled: true } }));
    const svc = await waitFor('review Service', () =>
      core.readNamespacedService({ name: `${name}-review`, namespace: ns }).catch(() => undefined),
    );
    expect(svc.spec!.ports).toEqual([
      expect.objectContaining({ name: 'review', port: 8082, targetPort: 'review', protocol: 'TCP' }),
    ]);
    expect(svc.spec!.selector).toEqual({
      'app.kubernetes.io/name': 'teleport-plugin-mattermost',
      'app.kubernetes.io/instance': name,
    });
    expect(svc.metadata!.labels!['app.kubernetes.io/component']).toBe('review-callback');
    const key = await waitFor('key Secret', () =>
      core.readNamespacedSecret({ name: `${name}-review-key`, namespace: ns }).catch(() => undefined),
    );
    const keyBytes = Buffer.from(key.data!.key!, 'base64');
    expect(keyBytes.length).toBeGreaterThanOrEqual(32);
    expect(key.metadata!.ownerReferences![0]!.name).toBe(name);
    const cm = await waitFor('ConfigMap', () =>
      core.readNamespacedConfigMap({ name, namespace: ns }).catch(() => undefined),
    );
    const { config } = parseConfigText(cm.data!['teleport-mattermost.toml']!, 'x.toml', {
      readTokenFile: false,
    });
    expect(config.review).toMatchObject({
      enabled: true,
      callbackUrl: `http://${name}-review.${ns}.svc:8082/mattermost/action`,
    });
    const d = await waitFor('Deployment', () => getDeployment(name));
    expect(d.spec!.template.spec!.containers[0]!.ports).toContainEqual(
      expect.objectContaining({ name: 'review', containerPort: 8082 }),
    );
    // A later reconcile (new spec) keeps the key: it is created once, never regenerated.
    await applyPlugin(kc, ns, name, baseSpec({ review: { enabled: true, mattermostUserIdTrait: 'mm_uid' } }));
    await waitFor('new trait rendered', async () => {
      const c = await core.readNamespacedConfigMap({ name, namespace: ns });
      return c.data!['teleport-mattermost.toml']!.includes('mm_uid') ? c : undefined;
    });
    const again = await core.readNamespacedSecret({ name: `${name}-review-key`, namespace: ns });
    expect(again.data!.key).toBe(key.data!.key);
  });
});
