import { buildDeployment } from '../../../operator/controller/build.js';
import {
  DEFAULT_WATCHER_RESOURCES,
  heapFlags,
  quantityBytes,
  watcherResources,
} from '../../../operator/controller/resources.js';
import type { MattermostAccessPlugin } from '../../../operator/controller/types.js';

describe('watcher resources', () => {
  it('parses Kubernetes quantities', () => {
    expect(quantityBytes('256Mi')).toBe(256 * 2 ** 20);
    expect(quantityBytes('1Gi')).toBe(2 ** 30);
    expect(quantityBytes('0.5Gi')).toBe(2 ** 29);
    expect(quantityBytes('500M')).toBe(5e8);
    expect(quantityBytes('1e9')).toBe(1e9);
    expect(quantityBytes('268435456')).toBe(268435456);
    expect(quantityBytes('12 parsecs')).toBeUndefined();
    expect(quantityBytes(undefined)).toBeUndefined();
  });

  it('derives the V8 heap cap from the memory limit, leaving room for what is not heap', () => {
    expect(heapFlags(256 * 2 ** 20)).toBe('--max-semi-space-size=1 --max-old-space-size=144');
    expect(heapFlags(512 * 2 ** 20)).toBe('--max-semi-space-size=1 --max-old-space-size=336');
    expect(heapFlags(2 ** 30)).toBe('--max-semi-space-size=1 --max-old-space-size=720');
    expect(heapFlags(64 * 2 ** 20)).toBe('--max-semi-space-size=1 --max-old-space-size=48');
  });

  it('sets the defaults when the user gives no resources, and no heap flags without a memory limit', () => {
    expect(watcherResources(undefined)).toEqual({
      resources: DEFAULT_WATCHER_RESOURCES,
      env: [{ name: 'NODE_OPTIONS', value: '--max-semi-space-size=1 --max-old-space-size=144' }],
    });
    expect(watcherResources({ requests: { cpu: '1' } })).toEqual({
      resources: { requests: { cpu: '1' } },
      env: [],
    });
  });

  it('puts both into the watcher container of the Deployment', () => {
    const cr = {
      apiVersion: 'teleport-plugins.dev/v1',
      kind: 'MattermostAccessPlugin',
      metadata: { name: 'mm', namespace: 'teleport', uid: 'uid-1', generation: 1 },
      spec: {
        teleport: { address: 't:443', identitySecretRef: { name: 'id' } },
        mattermost: { url: 'https://mm', tokenSecretRef: { name: 'tok' }, recipients: ['team/ops'] },
      },
    } as MattermostAccessPlugin;
    const c = buildDeployment(cr, { defaultImage: 'img:1', configHash: 'h', version: '1' }).spec!.template
      .spec!.containers[0]!;
    expect(c.resources).toEqual({ requests: { cpu: '25m', memory: '128Mi' }, limits: { memory: '256Mi' } });
    expect(c.env).toEqual([
      { name: 'NODE_OPTIONS', value: '--max-semi-space-size=1 --max-old-space-size=144' },
    ]);
  });
});
