import { buildConfigMap, buildDeployment, imageTag } from '../../../operator/controller/build.js';
import {
  CONFIG_HASH_ANNOTATION,
  CONFIG_PATH,
  IDENTITY_DIR,
  TOKEN_DIR,
} from '../../../operator/controller/defaults.js';
import type { MattermostAccessPlugin } from '../../../operator/controller/types.js';

function plugin(spec: Partial<MattermostAccessPlugin['spec']> = {}): MattermostAccessPlugin {
  return {
    apiVersion: 'teleport-plugins.dev/v1',
    kind: 'MattermostAccessPlugin',
    metadata: { name: 'mm', namespace: 'teleport', uid: 'uid-1', generation: 1 },
    spec: {
      teleport: {
        address: 'teleport.example.com:443',
        identitySecretRef: { name: 'teleport-plugin-mattermost-identity', key: 'identity' },
      },
      mattermost: {
        url: 'https://mm.example.com',
        tokenSecretRef: { name: 'mm-token', key: 'token' },
        recipients: ['team/ops'],
      },
      ...spec,
    },
  };
}

const inputs = { defaultImage: 'ghcr.io/x/plugin:1.0.0', configHash: 'abc123', version: '1.0.0' };

describe('buildDeployment', () => {
  const d = buildDeployment(plugin(), inputs);
  const pod = d.spec!.template.spec!;
  const c = pod.containers[0]!;

  it('runs the watcher image with start -c <config>', () => {
    expect(c.image).toBe('ghcr.io/x/plugin:1.0.0');
    expect(c.args).toEqual(['start', '-c', CONFIG_PATH]);
    expect(d.spec!.replicas).toBe(1);
    expect(d.spec!.strategy).toEqual({ type: 'Recreate' });
  });

  it('mounts the identity Secret as a directory and the token as a file, never with subPath', () => {
    expect(c.volumeMounts).toEqual(
      expect.arrayContaining([
        { name: 'teleport-identity', mountPath: IDENTITY_DIR, readOnly: true },
        { name: 'mattermost-token', mountPath: TOKEN_DIR, readOnly: true },
      ]),
    );
    expect(c.volumeMounts!.some((m) => m.subPath !== undefined)).toBe(false);
    const identity = pod.volumes!.find((v) => v.name === 'teleport-identity')!;
    expect(identity.secret).toMatchObject({
      secretName: 'teleport-plugin-mattermost-identity',
      items: [{ key: 'identity', path: 'identity' }],
    });
    const token = pod.volumes!.find((v) => v.name === 'mattermost-token')!;
    expect(token.secret).toMatchObject({ secretName: 'mm-token', items: [{ key: 'token', path: 'token' }] });
  });

  it('probes /readyz and /healthz on the watcher port', () => {
    expect(c.readinessProbe!.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(c.livenessProbe!.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(c.ports).toEqual([{ name: 'http', containerPort: 8081, protocol: 'TCP' }]);
  });

  it('applies the restricted pod security profile', () => {
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.automountServiceAccountToken).toBe(false);
  });

  it('carries the config hash on the pod template, owner reference and recommended labels', () => {
    expect(d.spec!.template.metadata!.annotations![CONFIG_HASH_ANNOTATION]).toBe('abc123');
    expect(d.metadata!.ownerReferences).toEqual([
      {
        apiVersion: 'teleport-plugins.dev/v1',
        kind: 'MattermostAccessPlugin',
        name: 'mm',
        uid: 'uid-1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(d.spec!.selector.matchLabels).toEqual({
      'app.kubernetes.io/name': 'teleport-plugin-mattermost',
      'app.kubernetes.io/instance': 'mm',
    });
    expect(d.metadata!.labels).toMatchObject({
      'app.kubernetes.io/component': 'watcher',
      'app.kubernetes.io/managed-by': 'teleport-mattermost-operator',
      'app.kubernetes.io/version': '1.0.0',
    });
  });

  it('only the config hash changes between two configs (an identity rotation does not enter it)', () => {
    const other = buildDeployment(plugin(), { ...inputs, configHash: 'def456' });
    other.spec!.template.metadata!.annotations![CONFIG_HASH_ANNOTATION] = 'abc123';
    expect(other).toEqual(d);
  });

  it('passes the workload knobs through, and user labels/annotations cannot override ours', () => {
    const custom = buildDeployment(
      plugin({
        image: 'registry.local/plugin:dev',
        imagePullPolicy: 'Always',
        resources: { limits: { memory: '128Mi' } },
        nodeSelector: { pool: 'infra' },
        tolerations: [{ key: 'infra', operator: 'Exists' }],
        affinity: { nodeAffinity: {} },
        podAnnotations: { a: 'b', [CONFIG_HASH_ANNOTATION]: 'forged' },
        podLabels: { team: 'sec', 'app.kubernetes.io/instance': 'forged' },
        serviceAccountName: 'plugin',
        priorityClassName: 'high',
        imagePullSecrets: [{ name: 'pull' }],
      }),
      inputs,
    );
    const p = custom.spec!.template;
    expect(p.spec!.containers[0]!.image).toBe('registry.local/plugin:dev');
    expect(p.spec!.containers[0]!.imagePullPolicy).toBe('Always');
    expect(p.spec!.containers[0]!.resources).toEqual({ limits: { memory: '128Mi' } });
    expect(p.spec!.containers[0]!.env).toEqual([
      { name: 'NODE_OPTIONS', value: '--max-semi-space-size=1 --max-old-space-size=48' },
    ]);
    expect(p.spec).toMatchObject({
      nodeSelector: { pool: 'infra' },
      serviceAccountName: 'plugin',
      priorityClassName: 'high',
      imagePullSecrets: [{ name: 'pull' }],
    });
    expect(p.metadata!.annotations).toEqual({ a: 'b', [CONFIG_HASH_ANNOTATION]: 'abc123' });
    expect(p.metadata!.labels).toMatchObject({
      team: 'sec',
      'app.kubernetes.io/instance': 'mm',
      'app.kubernetes.io/version': 'dev',
    });
  });

  it('mounts a CA bundle when caSecretRef is set', () => {
    const withCa = buildDeployment(
      plugin({
        mattermost: {
          url: 'https://mm.example.com',
          tokenSecretRef: { name: 't' },
          caSecretRef: { name: 'ca' },
        },
      }),
      inputs,
    );
    expect(
      withCa.spec!.template.spec!.volumes!.find((v) => v.name === 'mattermost-ca')!.secret!.secretName,
    ).toBe('ca');
  });
});

describe('buildConfigMap', () => {
  it('holds the TOML under the file name the Deployment mounts', () => {
    const cm = buildConfigMap(plugin(), 'x = 1\n', '1.0.0');
    expect(cm.data).toEqual({ 'teleport-mattermost.toml': 'x = 1\n' });
    expect(cm.metadata!.ownerReferences![0]!.controller).toBe(true);
  });
});

describe('imageTag', () => {
  it.each([
    ['ghcr.io/x/y:1.2.3', '1.2.3'],
    ['localhost:5000/y', 'latest'],
    ['y@sha256:abc', 'latest'],
    ['localhost:5000/y:v2@sha256:abc', 'v2'],
  ])('%s -> %s', (image, tag) => expect(imageTag(image)).toBe(tag));
});
