// The reconcile logic with in-memory reads and recorded writes (the real API server is covered by
// test/k8s/operator*.test.ts).
import type { KubernetesObject, V1ConfigMap, V1Deployment, V1Secret } from '@kubernetes/client-node';
import { CONFIG_HASH_ANNOTATION } from '../../../operator/controller/defaults.js';
import { Reconciler, type ClusterWriter } from '../../../operator/controller/reconciler.js';
import type {
  MattermostAccessPlugin,
  MattermostAccessPluginStatus,
} from '../../../operator/controller/types.js';
import { captureLogger, silentLogger } from '../../../operator/observability/logger.js';
import { identityFileText, TestCA } from '../../teleport-server/ca.js';

const ca = TestCA.create('example.com');
const NS = 'teleport';

class World implements ClusterWriter {
  plugins = new Map<string, MattermostAccessPlugin>();
  secrets = new Map<string, V1Secret>();
  deployments = new Map<string, V1Deployment>();
  configMaps = new Map<string, V1ConfigMap>();
  /** tbot's ServiceAccount/Role/RoleBinding, keyed kind/ns/name (its Secret goes to `secrets`). */
  objects = new Map<string, KubernetesObject>();
  writes: string[] = [];
  events: Array<{ type: string; reason: string; message: string }> = [];

  reader = {
    getPlugin: (ns: string, n: string) => this.plugins.get(`${ns}/${n}`),
    getSecret: (ns: string, n: string) => this.secrets.get(`${ns}/${n}`),
    getDeployment: (ns: string, n: string) => this.deployments.get(`${ns}/${n}`),
    getConfigMap: (ns: string, n: string) => this.configMaps.get(`${ns}/${n}`),
    getObject: (kind: string, ns: string, n: string) =>
      kind === 'Secret' ? this.secrets.get(`${ns}/${n}`) : this.objects.get(`${kind}/${ns}/${n}`),
  };

  async applyObject(kind: string, obj: KubernetesObject) {
    this.writes.push(kind.toLowerCase());
    const key = `${obj.metadata!.namespace}/${obj.metadata!.name}`;
    if (kind === 'Secret') {
      // Server-side apply of metadata only: data written by others (tbot) stays.
      const live = this.secrets.get(key);
      this.secrets.set(key, { ...structuredClone(obj), ...(live?.data ? { data: live.data } : {}) });
    } else {
      this.objects.set(`${kind}/${key}`, structuredClone(obj));
    }
  }

  async applyConfigMap(cm: V1ConfigMap) {
    this.writes.push('configmap');
    this.configMaps.set(`${cm.metadata!.namespace}/${cm.metadata!.name}`, structuredClone(cm));
  }
  async applyDeployment(d: V1Deployment) {
    this.writes.push('deployment');
    const key = `${d.metadata!.namespace}/${d.metadata!.name}`;
    const gen = (this.deployments.get(key)?.metadata?.generation ?? 0) + 1;
    this.deployments.set(key, { ...structuredClone(d), metadata: { ...d.metadata, generation: gen } });
  }
  async applyStatus(cr: MattermostAccessPlugin, status: MattermostAccessPluginStatus) {
    this.writes.push('status');
    this.plugins.get(`${cr.metadata.namespace}/${cr.metadata.name}`)!.status = structuredClone(status);
  }
  async event(_cr: MattermostAccessPlugin, type: string, reason: string, message: string) {
    this.events.push({ type, reason, message });
  }

  secret(name: string, data: Record<string, string>) {
    this.secrets.set(`${NS}/${name}`, {
      metadata: { name, namespace: NS },
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    });
  }
}

function setup(now = new Date(), logger = silentLogger()) {
  const world = new World();
  world.plugins.set(`${NS}/mm`, {
    apiVersion: 'teleport-plugins.dev/v1',
    kind: 'MattermostAccessPlugin',
    metadata: { name: 'mm', namespace: NS, uid: 'u1', generation: 1 },
    spec: {
      teleport: {
        address: 'teleport.example.com:443',
        identitySecretRef: { name: 'teleport-plugin-mattermost-identity', key: 'identity' },
      },
      mattermost: {
        url: 'https://mm.example.com',
        tokenSecretRef: { name: 'tok', key: 'token' },
        recipients: ['team/ops'],
      },
    },
  });
  world.secret('tok', { token: 'secret-token-value' });
  world.secret('teleport-plugin-mattermost-identity', {
    identity: identityFileText({ ca, ttlMs: 3600_000 }),
  });
  const reconciler = new Reconciler({
    reader: world.reader,
    writer: world,
    defaultImage: 'img:1',
    version: '1.0.0',
    logger,
    now: () => now,
  });
  return { world, reconciler, cr: () => world.plugins.get(`${NS}/mm`)! };
}

const cond = (cr: MattermostAccessPlugin, type: string) =>
  cr.status?.conditions?.find((c) => c.type === type);

describe('Reconciler', () => {
  it('creates children, writes status, and makes no writes on the next run', async () => {
    const { world, reconciler, cr } = setup();
    const result = await reconciler.reconcile(`${NS}/mm`);
    expect(world.writes).toEqual(['configmap', 'deployment', 'status']);
    expect(result.requeueAfterMs).toBeGreaterThan(0); // re-check before the identity expires
    expect(world.events.map((e) => e.reason)).toEqual(
      expect.arrayContaining(['DeploymentCreated', 'DeploymentNotAvailable']),
    );
    expect(cond(cr(), 'IdentityValid')!.status).toBe('True');
    world.writes = [];
    await reconciler.reconcile(`${NS}/mm`);
    expect(world.writes).toEqual([]);
  });

  it('does not touch the Deployment when only the identity rotates, but updates the expiry', async () => {
    const { world, reconciler, cr } = setup();
    await reconciler.reconcile(`${NS}/mm`);
    const hash = world.deployments.get(`${NS}/mm`)!.spec!.template.metadata!.annotations![
      CONFIG_HASH_ANNOTATION
    ];
    const expiry = cr().status!.identityExpiresAt;
    world.secret('teleport-plugin-mattermost-identity', {
      identity: identityFileText({ ca, ttlMs: 7200_000 }),
    });
    world.writes = [];
    await reconciler.reconcile(`${NS}/mm`);
    expect(world.writes).toEqual(['status']);
    expect(cr().status!.identityExpiresAt).not.toBe(expiry);
    expect(
      world.deployments.get(`${NS}/mm`)!.spec!.template.metadata!.annotations![CONFIG_HASH_ANNOTATION],
    ).toBe(hash);
  });

  it('rolls the pods on an identity rotation when refreshIdentity is off (the watcher cannot reload it)', async () => {
    const { world, reconciler, cr } = setup();
    cr().spec.teleport.refreshIdentity = false;
    await reconciler.reconcile(`${NS}/mm`);
    const hash = world.deployments.get(`${NS}/mm`)!.spec!.template.metadata!.annotations![
      CONFIG_HASH_ANNOTATION
    ];
    world.secret('teleport-plugin-mattermost-identity', {
      identity: identityFileText({ ca, ttlMs: 7200_000 }),
    });
    await reconciler.reconcile(`${NS}/mm`);
    expect(
      world.deployments.get(`${NS}/mm`)!.spec!.template.metadata!.annotations![CONFIG_HASH_ANNOTATION],
    ).not.toBe(hash);
  });

  it('rolls the pods when the token changes (the watcher reads it at start)', async () => {
    const { world, reconciler } = setup();
    await reconciler.reconcile(`${NS}/mm`);
    const hash = world.deployments.get(`${NS}/mm`)!.spec!.template.metadata!.annotations![
      CONFIG_HASH_ANNOTATION
    ];
    world.secret('tok', { token: 'rotated-token-value' });
    await reconciler.reconcile(`${NS}/mm`);
    expect(
      world.deployments.get(`${NS}/mm`)!.spec!.template.metadata!.annotations![CONFIG_HASH_ANNOTATION],
    ).not.toBe(hash);
    expect(world.events.map((e) => e.reason)).toContain('ConfigChanged');
  });

  it.each([
    [
      'a missing Secret',
      (w: World) => w.secrets.delete(`${NS}/teleport-plugin-mattermost-identity`),
      'IdentitySecretNotFound',
      `Secret ${NS}/teleport-plugin-mattermost-identity (spec.teleport.identitySecretRef) does not exist`,
    ],
    [
      'a missing key',
      (w: World) => w.secret('teleport-plugin-mattermost-identity', { other: 'x' }),
      'IdentityKeyNotFound',
      `Secret ${NS}/teleport-plugin-mattermost-identity has no key 'identity' (it has 'other')`,
    ],
    [
      'a malformed identity',
      (w: World) => w.secret('teleport-plugin-mattermost-identity', { identity: 'garbage' }),
      'IdentityMalformed',
      `Secret ${NS}/teleport-plugin-mattermost-identity key 'identity'`,
    ],
  ])('reports %s', async (_what, mutate, reason, message) => {
    const { world, reconciler, cr } = setup();
    mutate(world);
    await reconciler.reconcile(`${NS}/mm`);
    expect(cond(cr(), 'IdentityValid')).toMatchObject({ status: 'False', reason });
    expect(cond(cr(), 'IdentityValid')!.message).toContain(message);
    expect(cond(cr(), 'Ready')).toMatchObject({ status: 'False', reason: 'IdentityInvalid' });
    expect(world.events.some((e) => e.type === 'Warning' && e.reason === reason)).toBe(true);
  });

  it('treats a Secret key named like an Object member as missing, not as a crash (issue 15)', async () => {
    const { reconciler, cr } = setup();
    cr().spec.teleport.identitySecretRef = {
      name: 'teleport-plugin-mattermost-identity',
      key: 'constructor',
    };
    await reconciler.reconcile(`${NS}/mm`);
    expect(cond(cr(), 'IdentityValid')).toMatchObject({ status: 'False', reason: 'IdentityKeyNotFound' });
    expect(cond(cr(), 'IdentityValid')!.message).toContain("has no key 'constructor'");
  });

  it('never puts a URL password into an Event (issue 15)', async () => {
    const { world, reconciler, cr } = setup();
    cr().spec.mattermost.url = 'https://bot:S3cret@mm.example.com/my team';
    await reconciler.reconcile(`${NS}/mm`);
    expect(world.events.length).toBeGreaterThan(0);
    expect(JSON.stringify(world.events)).not.toContain('S3cret');
    expect(JSON.stringify(world.events)).toContain('***@mm.example.com');
    expect(JSON.stringify(cr().status)).not.toContain('S3cret');
  });

  it('reports an expired identity with its expiry', async () => {
    const { world, reconciler, cr } = setup();
    world.secret('teleport-plugin-mattermost-identity', {
      identity: identityFileText({ ca, ttlMs: 1000, notBefore: new Date(Date.now() - 3600_000) }),
    });
    await reconciler.reconcile(`${NS}/mm`);
    expect(cond(cr(), 'IdentityValid')).toMatchObject({ status: 'False', reason: 'IdentityExpired' });
    expect(Date.parse(cr().status!.identityExpiresAt!)).toBeLessThan(Date.now());
  });

  it('says what to edit in CR field names, warns once per message in Events and in the log', async () => {
    const { logger, lines } = captureLogger();
    const { world, reconciler, cr } = setup(new Date(), logger);
    world.secret('teleport-plugin-mattermost-identity', {
      identity: identityFileText({ ca, ttlMs: 1000, notBefore: new Date(Date.now() - 3600_000) }),
    });
    await reconciler.reconcile(`${NS}/mm`);
    const message = cond(cr(), 'IdentityValid')!.message;
    expect(message).toContain('set spec.teleport.refreshIdentity: true');
    expect(message).not.toContain('refresh_identity');
    expect(cond(cr(), 'Ready')!.message).toBe(message);
    const warnings = world.events.filter((e) => e.type === 'Warning');
    expect(warnings.map((e) => [e.reason, e.message])).toEqual([['IdentityExpired', message]]);
    expect(lines.filter((l) => l.level === 'warn').map((l) => [l.message, l.reason])).toEqual([
      [message, 'IdentityExpired'],
    ]);
  });

  it('warns in ConfigValid about empty recipients and the values the chart dropped', async () => {
    const { reconciler, cr } = setup();
    cr().spec.mattermost.recipients = [];
    cr().metadata.annotations = {
      'teleport-plugins.dev/chart-warnings': 'log.output=/var/lib/teleport/mattermost.log is ignored\n',
    };
    await reconciler.reconcile(`${NS}/mm`);
    expect(cond(cr(), 'ConfigValid')).toMatchObject({ status: 'True', reason: 'ConfigRendered' });
    expect(cond(cr(), 'ConfigValid')!.message).toBe(
      `Configuration rendered into ConfigMap ${NS}/mm; ` +
        'warning: spec.mattermost.recipients and roleToRecipients are empty, so requests reach only their suggested reviewers; add "team/channel" names or emails; ' +
        'warning (Helm values): log.output=/var/lib/teleport/mattermost.log is ignored',
    );
  });

  it('leaves the Deployment unchanged for an invalid spec', async () => {
    const { world, reconciler, cr } = setup();
    await reconciler.reconcile(`${NS}/mm`);
    const before = structuredClone(world.deployments.get(`${NS}/mm`));
    cr().spec.mattermost.roleToRecipients = { '*': ['team/x'] };
    cr().metadata.generation = 2;
    world.writes = [];
    await reconciler.reconcile(`${NS}/mm`);
    expect(world.writes).toEqual(['status']);
    expect(world.deployments.get(`${NS}/mm`)).toEqual(before);
    expect(cond(cr(), 'ConfigValid')).toMatchObject({
      status: 'False',
      reason: 'InvalidSpec',
      observedGeneration: 2,
    });
  });

  it('does nothing for a deleted resource', async () => {
    const { world, reconciler } = setup();
    world.plugins.clear();
    expect(await reconciler.reconcile(`${NS}/mm`)).toEqual({});
    expect(world.writes).toEqual([]);
  });
});

describe('Reconciler with spec.teleport.tbot', () => {
  function withTbot(now = new Date()) {
    const s = setup(now);
    const cr = s.cr();
    cr.spec.teleport = {
      tbot: { clusterName: 'example.teleport.sh', proxyAddress: 'example.teleport.sh:443' },
    } as typeof cr.spec.teleport;
    s.world.secrets.delete(`${NS}/teleport-plugin-mattermost-identity`);
    return s;
  }

  it("applies tbot's objects beside the watcher, reads tbot's output Secret, and then makes no writes", async () => {
    const { world, reconciler, cr } = withTbot();
    await reconciler.reconcile(`${NS}/mm`);
    expect(world.writes).toEqual([
      'serviceaccount',
      'role',
      'rolebinding',
      'secret',
      'configmap',
      'deployment',
      'configmap',
      'deployment',
      'status',
    ]);
    expect(world.deployments.get(`${NS}/mm-tbot`)).toBeDefined();
    expect(world.objects.get(`Role/${NS}/mm-tbot`)).toMatchObject({
      rules: [{ resources: ['secrets'], resourceNames: ['mm-tbot-out'], verbs: ['get', 'update', 'patch'] }],
    });
    // The watcher connects to tbot's address and mounts tbot's output Secret.
    const toml = world.configMaps.get(`${NS}/mm`)!.data!['teleport-mattermost.toml']!;
    expect(toml).toContain('addr = "example.teleport.sh:443"');
    const volumes = world.deployments.get(`${NS}/mm`)!.spec!.template.spec!.volumes!;
    expect(volumes.find((v) => v.name === 'teleport-identity')!.secret!.secretName).toBe('mm-tbot-out');
    // The empty Secret: tbot has not written yet.
    expect(cond(cr(), 'IdentityValid')).toMatchObject({ status: 'False', reason: 'IdentityKeyNotFound' });
    expect(cond(cr(), 'IdentityValid')!.message).toContain('tbot (Deployment teleport/mm-tbot)');
    expect(cond(cr(), 'TbotReady')).toMatchObject({ status: 'False', reason: 'DeploymentPending' });
    world.writes = [];
    await reconciler.reconcile(`${NS}/mm`);
    expect(world.writes).toEqual([]);
  });

  it('turns IdentityValid True when tbot first writes the Secret, without touching a Deployment; renewals move the expiry', async () => {
    const { world, reconciler, cr } = withTbot();
    await reconciler.reconcile(`${NS}/mm`);
    const watcher = structuredClone(world.deployments.get(`${NS}/mm`));
    const tbot = structuredClone(world.deployments.get(`${NS}/mm-tbot`));
    const first = identityFileText({ ca, ttlMs: 3600_000 });
    world.secret('mm-tbot-out', { identity: first });
    world.writes = [];
    await reconciler.reconcile(`${NS}/mm`);
    // The Secret lost our labels in this fake write, so it is re-applied; no Deployment is written.
    expect(world.writes.filter((w) => w === 'deployment')).toEqual([]);
    expect(cond(cr(), 'IdentityValid')).toMatchObject({ status: 'True', reason: 'IdentityValid' });
    const expiry = Date.parse(cr().status!.identityExpiresAt!);
    world.secret('mm-tbot-out', { identity: identityFileText({ ca, ttlMs: 7200_000 }) });
    await reconciler.reconcile(`${NS}/mm`);
    expect(Date.parse(cr().status!.identityExpiresAt!)).toBeGreaterThan(expiry);
    expect(world.deployments.get(`${NS}/mm`)).toEqual(watcher);
    expect(world.deployments.get(`${NS}/mm-tbot`)).toEqual(tbot);
  });

  it('mirrors the tbot Deployment into TbotReady and Ready', async () => {
    const { world, reconciler, cr } = withTbot();
    world.secret('mm-tbot-out', { identity: identityFileText({ ca, ttlMs: 3600_000 }) });
    await reconciler.reconcile(`${NS}/mm`);
    const available = { observedGeneration: 1, conditions: [{ type: 'Available', status: 'True' }] };
    world.deployments.get(`${NS}/mm`)!.status = available;
    await reconciler.reconcile(`${NS}/mm`);
    expect(cond(cr(), 'Ready')).toMatchObject({ status: 'False', reason: 'TbotNotReady' });
    world.deployments.get(`${NS}/mm-tbot`)!.status = { ...available, availableReplicas: 1 };
    await reconciler.reconcile(`${NS}/mm`);
    expect(cond(cr(), 'TbotReady')).toMatchObject({ status: 'True', reason: 'DeploymentAvailable' });
    expect(cond(cr(), 'Ready')).toMatchObject({ status: 'True' });
  });

  it('removes TbotReady when tbot is removed from the spec', async () => {
    const { world, reconciler, cr } = withTbot();
    await reconciler.reconcile(`${NS}/mm`);
    expect(cond(cr(), 'TbotReady')).toBeDefined();
    cr().spec.teleport = {
      address: 'teleport.example.com:443',
      identitySecretRef: { name: 'mm-tbot-out' },
    };
    world.secret('mm-tbot-out', { identity: identityFileText({ ca, ttlMs: 3600_000 }) });
    await reconciler.reconcile(`${NS}/mm`);
    expect(cond(cr(), 'TbotReady')).toBeUndefined();
  });

  it('rejects contradictory tbot settings with every problem', async () => {
    const { reconciler, cr } = withTbot();
    cr().spec.teleport.tbot = { clusterName: '', proxyAddress: 'a.example.com:443', authAddress: 'b:3025' };
    cr().spec.teleport.identitySecretRef = { name: 'other' };
    await reconciler.reconcile(`${NS}/mm`);
    const msg = cond(cr(), 'ConfigValid')!.message;
    expect(msg).toContain('clusterName is missing');
    expect(msg).toContain('exactly one of proxyAddress');
    expect(msg).toContain("tbot's output Secret mm-tbot-out; remove identitySecretRef");
    expect(cond(cr(), 'TbotReady')).toMatchObject({ status: 'False', reason: 'TbotSpecInvalid' });
  });
});

describe('IdentityValid when renewals stop', () => {
  it('goes False (IdentityNotRenewed) within the margin and comes back at the margin and at expiry', async () => {
    const notBefore = new Date(Date.now() - 60_000);
    const identity = identityFileText({ ca, ttlMs: 3600_000, notBefore });
    const notAfter = notBefore.getTime() + 3600_000;
    const early = setup(new Date(notAfter - 40 * 60_000));
    early.world.secret('teleport-plugin-mattermost-identity', { identity });
    const first = await early.reconciler.reconcile(`${NS}/mm`);
    expect(cond(early.cr(), 'IdentityValid')!.status).toBe('True');
    // Requeued for the moment it enters the 15-minute margin.
    expect(Math.abs(first.requeueAfterMs! - (25 * 60_000 + 1000))).toBeLessThan(2000);

    const late = setup(new Date(notAfter - 10 * 60_000));
    late.world.secret('teleport-plugin-mattermost-identity', { identity });
    const second = await late.reconciler.reconcile(`${NS}/mm`);
    expect(cond(late.cr(), 'IdentityValid')).toMatchObject({ status: 'False', reason: 'IdentityNotRenewed' });
    expect(cond(late.cr(), 'IdentityValid')!.message).toMatch(/\(in 10 min\) and has not been renewed/);
    expect(cond(late.cr(), 'Ready')).toMatchObject({ status: 'False', reason: 'IdentityInvalid' });
    expect(Math.abs(second.requeueAfterMs! - (10 * 60_000 + 1000))).toBeLessThan(2000);
  });
});
