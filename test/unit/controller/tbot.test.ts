// tbot's objects (pure builders) and our typed model of tbot's configuration schema.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { TBOT_TELEPORT_VERSION } from '../../../operator/controller/defaults.js';
import { buildTbotObjects, withTbotDefaults } from '../../../operator/controller/tbot.js';
import { renderTbotConfig } from '../../../operator/controller/tbot-config.js';
import { parseTbotConfig } from '../../support/tbot-schema.js';
import type { MattermostAccessPlugin } from '../../../operator/controller/types.js';

const cr: MattermostAccessPlugin = {
  apiVersion: 'teleport-plugins.dev/v1',
  kind: 'MattermostAccessPlugin',
  metadata: { name: 'mm', namespace: 'teleport', uid: 'u1', generation: 1 },
  spec: {
    teleport: {
      tbot: { clusterName: 'example.teleport.sh', proxyAddress: 'example.teleport.sh:443' },
    } as MattermostAccessPlugin['spec']['teleport'],
    mattermost: { url: 'https://mm.example.com', tokenSecretRef: { name: 'tok' } },
  },
};
const tbot = cr.spec.teleport.tbot!;

describe('tbot objects', () => {
  const o = buildTbotObjects(cr, tbot, '1.0.0');

  it('limits the Role to get/update/patch of the one output Secret (no create)', () => {
    expect(o.role.rules).toEqual([
      {
        apiGroups: [''],
        resources: ['secrets'],
        resourceNames: ['mm-tbot-out'],
        verbs: ['get', 'update', 'patch'],
      },
    ]);
    expect(o.roleBinding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'mm-tbot', namespace: 'teleport' },
    ]);
  });

  it('pre-creates the output Secret with metadata only (the data is tbot’s)', () => {
    expect(o.outputSecret).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: expect.objectContaining({ name: 'mm-tbot-out' }),
      type: 'Opaque',
    });
  });

  it('owns everything through the CR, so the garbage collector removes it with the CR', () => {
    for (const obj of [o.serviceAccount, o.role, o.roleBinding, o.outputSecret, o.configMap, o.deployment]) {
      expect(obj.metadata!.ownerReferences).toEqual([
        expect.objectContaining({ uid: 'u1', controller: true }),
      ]);
    }
  });

  it('runs the pinned tbot image with restricted security and diagnostics probes', () => {
    const pod = o.deployment.spec!.template.spec!;
    const c = pod.containers[0]!;
    expect(c.image).toBe(`public.ecr.aws/gravitational/tbot-distroless:${TBOT_TELEPORT_VERSION}`);
    expect(c.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
    });
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.livenessProbe!.httpGet).toEqual({ path: '/livez', port: 'diag' });
    expect(c.readinessProbe!.httpGet).toEqual({ path: '/readyz', port: 'diag' });
    expect(o.deployment.spec!.strategy).toEqual({ type: 'Recreate' });
    expect(o.deployment.spec!.selector.matchLabels).toEqual({
      'app.kubernetes.io/name': 'tbot',
      'app.kubernetes.io/instance': 'mm',
    });
    const token = pod.volumes!.find((v) => v.name === 'join-sa-token')!;
    expect(token.projected!.sources![0]!.serviceAccountToken!.audience).toBe('example.teleport.sh');
  });

  it("renders a configuration our model of tbot's schema accepts", () => {
    const parsed = parseTbotConfig(parseYaml(o.configMap.data!['tbot.yaml']!));
    expect(parsed).toMatchObject({
      version: 'v2',
      proxy_server: 'example.teleport.sh:443',
      onboarding: { join_method: 'kubernetes', token: 'mm-tbot' },
      storage: { type: 'memory' },
      outputs: [{ type: 'identity', destination: { type: 'kubernetes_secret', name: 'mm-tbot-out' } }],
    });
  });

  it('fills in the watcher address and identity Secret from tbot', () => {
    expect(withTbotDefaults(cr).spec.teleport).toMatchObject({
      address: 'example.teleport.sh:443',
      identitySecretRef: { name: 'mm-tbot-out', key: 'identity' },
    });
  });

  it('pins the same Teleport version as the chart', () => {
    const helpers = readFileSync(
      new URL('../../../charts/teleport-plugin-mattermost/templates/_helpers.tpl', import.meta.url),
      'utf8',
    );
    expect(helpers).toMatch(
      new RegExp(`define "tpm.tbot.teleportVersion" -}}\\n${TBOT_TELEPORT_VERSION.replace(/\./g, '\\.')}\\n`),
    );
  });
});

describe("typed model of tbot's configuration", () => {
  const good = parseYaml(
    renderTbotConfig({ joinMethod: 'kubernetes', token: 't', authAddress: 'auth:3025', outputSecret: 's' }),
  ) as Record<string, unknown>;

  it('accepts the documented keys', () => {
    expect(() => parseTbotConfig(good)).not.toThrow();
    expect(() =>
      parseTbotConfig({
        ...good,
        debug: true,
        credential_ttl: '1h',
        renewal_interval: '20m',
        oneshot: false,
      }),
    ).not.toThrow();
  });

  it('rejects both addresses, a missing address, unknown keys and join methods', () => {
    expect(() => parseTbotConfig({ ...good, proxy_server: 'p:443' })).toThrow(
      /only one of auth_server and proxy_server/,
    );
    const { auth_server: _drop, ...noAddress } = good;
    expect(() => parseTbotConfig(noAddress)).toThrow(/one of auth_server or proxy_server is required/);
    expect(() => parseTbotConfig({ ...good, outptus: [] })).toThrow(/outptus/);
    expect(() => parseTbotConfig({ ...good, onboarding: { join_method: 'kube', token: 't' } })).toThrow(
      /onboarding.join_method/,
    );
    expect(() =>
      parseTbotConfig({
        ...good,
        outputs: [{ type: 'identity', destination: { type: 'kubernetes_secret' } }],
      }),
    ).toThrow(/outputs/);
    expect(() => parseTbotConfig({ ...good, version: 'v1' })).toThrow(/version/);
  });
});
