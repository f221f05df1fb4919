// The reconcile logic with in-memory reads and recorded writes (the real API server is covered by
// test/k8s/operator*.test.ts).
import { Writable } from 'node:stream';
import type { V1ConfigMap, V1Deployment, V1Secret } from '@kubernetes/client-node';
import winston from 'winston';
import { CONFIG_HASH_ANNOTATION } from '../../../operator/controller/defaults.js';
import { Reconciler, type ClusterWriter } from '../../../operator/controller/reconciler.js';
import type {
  MattermostAccessPlugin,
  MattermostAccessPluginStatus,
} from '../../../operator/controller/types.js';
import { silentLogger } from '../../../operator/observability/logger.js';
import { identityFileText, TestCA } from '../../teleport-server/ca.js';

const ca = TestCA.create('example.com');
const NS = 'teleport';

class World implements ClusterWriter {
  plugins = new Map<string, MattermostAccessPlugin>();
  secrets = new Map<string, V1Secret>();
  deployments = new Map<string, V1Deployment>();
  configMaps = new Map<string, V1ConfigMap>();
  writes: string[] = [];
  events: Array<{ type: string; reason: string; message: string }> = [];

  reader = {
    getPlugin: (ns: string, n: string) => this.plugins.get(`${ns}/${n}`),
    getSecret: (ns: string, n: string) => this.secrets.get(`${ns}/${n}`),
    getDeployment: (ns: string, n: string) => this.deployments.get(`${ns}/${n}`),
    getConfigMap: (ns: string, n: string) => this.configMaps.get(`${ns}/${n}`),
  };

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
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      objectMode: true,
      write(info: Record<string, unknown>, _enc, done) {
        lines.push(info);
        done();
      },
    });
    const logger = winston.createLogger({
      level: 'debug',
      transports: [new winston.transports.Stream({ stream: sink })],
    });
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
