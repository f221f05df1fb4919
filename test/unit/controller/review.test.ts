// spec.review in the operator: the [review] TOML the watcher accepts, the Deployment's key mount and port,
// the callback Service (applied once, then idle), and the signing key Secret generated once when none is
// named (never regenerated), or waited for when the spec names one.
import type { V1ConfigMap, V1Deployment, V1Secret, V1Service } from '@kubernetes/client-node';
import { parseConfigText } from '../../../operator/config/load.js';
import { buildDeployment } from '../../../operator/controller/build.js';
import { Reconciler, type ClusterWriter } from '../../../operator/controller/reconciler.js';
import { renderConfig } from '../../../operator/controller/render.js';
import type {
  MattermostAccessPlugin,
  MattermostAccessPluginStatus,
} from '../../../operator/controller/types.js';
import { silentLogger } from '../../../operator/observability/logger.js';
import { identityFileText, TestCA } from '../../teleport-server/ca.js';

const NS = 'teleport';
const ca = TestCA.create('example.com');

function plugin(review: MattermostAccessPlugin['spec']['review']): MattermostAccessPlugin {
  return {
    apiVersion: 'teleport-plugins.dev/v1',
    kind: 'MattermostAccessPlugin',
    metadata: { name: 'mm', namespace: NS, uid: 'u1', generation: 1 },
    spec: {
      teleport: { address: 'teleport.example.com:443', identitySecretRef: { name: 'id', key: 'identity' } },
      mattermost: {
        url: 'https://mm.example.com',
        tokenSecretRef: { name: 'tok' },
        recipients: ['team/ops'],
      },
      ...(review ? { review } : {}),
    },
  };
}

class World implements ClusterWriter {
  secrets = new Map<string, V1Secret>();
  services = new Map<string, V1Service>();
  deployments = new Map<string, V1Deployment>();
  configMaps = new Map<string, V1ConfigMap>();
  writes: string[] = [];
  constructor(public cr: MattermostAccessPlugin) {
    const b64 = (v: string) => Buffer.from(v).toString('base64');
    this.secrets.set(`${NS}/tok`, {
      metadata: { name: 'tok', namespace: NS },
      data: { token: b64('t0ken') },
    });
    this.secrets.set(`${NS}/id`, {
      metadata: { name: 'id', namespace: NS },
      data: { identity: b64(identityFileText({ ca, ttlMs: 3600_000 })) },
    });
  }
  reader = {
    getPlugin: () => this.cr,
    getSecret: (ns: string, n: string) => this.secrets.get(`${ns}/${n}`),
    getDeployment: (ns: string, n: string) => this.deployments.get(`${ns}/${n}`),
    getConfigMap: (ns: string, n: string) => this.configMaps.get(`${ns}/${n}`),
    getService: (ns: string, n: string) => this.services.get(`${ns}/${n}`),
  };
  async applyConfigMap(cm: V1ConfigMap) {
    this.writes.push('configmap');
    this.configMaps.set(`${NS}/${cm.metadata!.name}`, structuredClone(cm));
  }
  async applyDeployment(d: V1Deployment) {
    this.writes.push('deployment');
    this.deployments.set(`${NS}/${d.metadata!.name}`, structuredClone(d));
  }
  async applyService(s: V1Service) {
    this.writes.push(`service ${s.metadata!.name}`);
    this.services.set(`${NS}/${s.metadata!.name}`, structuredClone(s));
  }
  async createSecret(s: V1Secret) {
    this.writes.push(`secret ${s.metadata!.name}`);
    this.secrets.set(`${NS}/${s.metadata!.name}`, structuredClone(s));
    return true;
  }
  async applyStatus(_cr: MattermostAccessPlugin, status: MattermostAccessPluginStatus) {
    this.writes.push('status');
    this.cr.status = structuredClone(status);
  }
  async event() {}
}

const reconcilerFor = (world: World) =>
  new Reconciler({
    reader: world.reader,
    writer: world,
    defaultImage: 'img:1',
    version: '1.0.0',
    logger: silentLogger(),
  });

test('no spec.review: no [review], no Service, no key (as before)', async () => {
  const world = new World(plugin(undefined));
  await reconcilerFor(world).reconcile(`${NS}/mm`);
  expect(world.writes).toEqual(['configmap', 'deployment', 'status']);
  expect(renderConfig(world.cr.spec, world.cr).toml).not.toContain('[review]');
});

test('[review] points at the Service, mounts the key, and is accepted by the watcher', () => {
  const cr = plugin({ enabled: true });
  const { toml } = renderConfig(cr.spec, cr);
  const { config } = parseConfigText(toml, 'x.toml', { readTokenFile: false });
  expect(config.review).toMatchObject({
    enabled: true,
    listenAddr: ':8082',
    callbackUrl: 'http://mm-review.teleport.svc:8082/mattermost/action',
    userIdTrait: 'mattermost_user_id',
    allowEmailUsernameMatch: false,
    signingKeyFile: '/var/lib/teleport/plugins/mattermost/review-key/key',
  });
  const d = buildDeployment(cr, { defaultImage: 'img', configHash: 'h', version: '1' });
  const pod = d.spec!.template.spec!;
  expect(pod.containers[0]!.ports).toContainEqual({ name: 'review', containerPort: 8082, protocol: 'TCP' });
  expect(pod.volumes).toContainEqual(
    expect.objectContaining({
      name: 'review-key',
      secret: expect.objectContaining({ secretName: 'mm-review-key' }),
    }),
  );
});

test('generates the key Secret once, applies the Service once, then makes no writes', async () => {
  const world = new World(plugin({ enabled: true }));
  const r = reconcilerFor(world);
  await r.reconcile(`${NS}/mm`);
  expect(world.writes).toEqual([
    'configmap',
    'deployment',
    'secret mm-review-key',
    'service mm-review',
    'status',
  ]);
  const key = Buffer.from(world.secrets.get(`${NS}/mm-review-key`)!.data!.key!, 'base64');
  expect(key.length).toBeGreaterThanOrEqual(32);
  const svc = world.services.get(`${NS}/mm-review`)!;
  expect(svc.spec!.ports).toEqual([{ name: 'review', port: 8082, targetPort: 'review', protocol: 'TCP' }]);
  expect(svc.metadata!.labels!['app.kubernetes.io/component']).toBe('review-callback');
  expect(svc.metadata!.ownerReferences![0]!.uid).toBe('u1');
  world.writes = [];
  await r.reconcile(`${NS}/mm`);
  expect(world.writes).toEqual([]);
});

test('a named key Secret is used, never generated; while missing the reconcile comes back', async () => {
  const world = new World(plugin({ enabled: true, signingKeySecretRef: { name: 'mine', key: 'k' } }));
  const result = await reconcilerFor(world).reconcile(`${NS}/mm`);
  expect(world.writes).not.toContain('secret mine');
  expect(result.requeueAfterMs).toBeLessThanOrEqual(30_000);
  const pod = world.deployments.get(`${NS}/mm`)!.spec!.template.spec!;
  expect(pod.volumes).toContainEqual(
    expect.objectContaining({
      secret: expect.objectContaining({ secretName: 'mine', items: [{ key: 'k', path: 'key' }] }),
    }),
  );
});
