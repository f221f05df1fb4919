// Reflector against a scripted HTTP watch endpoint: it resumes from the last resourceVersion after a
// watch ends or fails, and lists again only after 410 Gone.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { KubeApi } from '../../../operator/controller/kubeapi.js';
import { Reflector, type ListResult } from '../../../operator/controller/reflector.js';
import { silentLogger } from '../../../operator/observability/logger.js';

const obj = (name: string, rv: string): KubernetesObject => ({
  metadata: { name, namespace: 'ns', resourceVersion: rv },
});

type Step = (res: http.ServerResponse) => void;
const events =
  (...lines: object[]): Step =>
  (res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    for (const l of lines) res.write(`${JSON.stringify(l)}\n`);
    res.end();
  };

async function waitUntil(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
  if (!cond()) throw new Error('condition not reached');
}

describe('Reflector', () => {
  let server: http.Server;
  let api: KubeApi;
  const requests: URLSearchParams[] = [];
  let steps: Step[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      requests.push(new URL(req.url!, 'http://x').searchParams);
      const step = steps.shift();
      if (step) step(res);
      // No more steps: hold the watch open until the test ends.
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const kc = new KubeConfig();
    const server_ = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: server_, skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    api = await KubeApi.create(kc);
  });

  afterAll(async () => {
    api.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('resumes from the last resourceVersion, relists on 410 and reports deletions found by the relist', async () => {
    const lists: Array<ListResult<KubernetesObject>> = [
      { items: [obj('a', '10'), obj('b', '11')], metadata: { resourceVersion: '12' } },
      { items: [obj('a', '30')], metadata: { resourceVersion: '31' } },
    ];
    let listCalls = 0;
    const upserts: string[] = [];
    const deletes: string[] = [];
    const restarts: string[] = [];
    steps = [
      events({ type: 'MODIFIED', object: obj('a', '13') }, { type: 'ADDED', object: obj('c', '14') }),
      (res) => res.destroy(), // network failure
      events({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '20' } } }),
      events({ type: 'ERROR', object: { kind: 'Status', code: 410, message: 'too old resource version' } }),
    ];
    const r = new Reflector<KubernetesObject>({
      kind: 'Thing',
      api,
      path: '/apis/x/v1/things',
      list: async () => lists[Math.min(listCalls++, lists.length - 1)]!,
      handlers: {
        onUpsert: (o) => upserts.push(`${o.metadata!.name}@${o.metadata!.resourceVersion}`),
        onDelete: (o) => deletes.push(o.metadata!.name!),
      },
      logger: silentLogger(),
      onRestart: (why) => restarts.push(why),
    });
    await r.start();
    try {
      expect(r.hasSynced()).toBe(true);
      await waitUntil(() => listCalls === 2 && requests.length >= 5);
      const rvs = requests.map((q) => q.get('resourceVersion'));
      // list@12 -> watch from 12; after the events watch from 14; after the failure again from 14;
      // after the bookmark from 20; after 410: relist (rv 31) and watch from 31.
      expect(rvs.slice(0, 5)).toEqual(['12', '14', '14', '20', '31']);
      expect(requests[0]!.get('allowWatchBookmarks')).toBe('true');
      expect(restarts).toEqual(['closed', 'error', 'closed', 'gone']);
      expect(upserts).toEqual(['a@10', 'b@11', 'a@13', 'c@14', 'a@30']);
      expect(deletes.sort()).toEqual(['b', 'c']);
      expect(r.list().map((o) => o.metadata!.name)).toEqual(['a']);
    } finally {
      r.stop();
    }
  });

  it('keeps the newer of a written object and the cached one', () => {
    const r = new Reflector<KubernetesObject>({
      kind: 'Thing',
      api,
      path: '/x',
      list: async () => ({ items: [] }),
      handlers: { onUpsert: () => {}, onDelete: () => {} },
      logger: silentLogger(),
    });
    r.observe({ metadata: { name: 'a', namespace: 'ns', resourceVersion: '5', managedFields: [{}] } });
    r.observe({ metadata: { name: 'a', namespace: 'ns', resourceVersion: '4' } });
    expect(r.get('ns', 'a')!.metadata).toEqual({ name: 'a', namespace: 'ns', resourceVersion: '5' });
  });

  it('caches only what keep() accepts, trimmed, while handlers see every event', async () => {
    const seen: string[] = [];
    steps = [
      events(
        {
          type: 'ADDED',
          object: {
            metadata: { name: 'big', namespace: 'ns', resourceVersion: '3' },
            data: { x: 'y'.repeat(1000) },
          },
        },
        {
          type: 'MODIFIED',
          object: { metadata: { name: 'ref', namespace: 'ns', resourceVersion: '4', managedFields: [{}] } },
        },
      ),
    ];
    requests.length = 0;
    const r = new Reflector<KubernetesObject>({
      kind: 'Thing',
      api,
      path: '/api/v1/secrets',
      accept: 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1',
      list: async () => ({ items: [obj('ref', '1'), obj('other', '2')], metadata: { resourceVersion: '2' } }),
      transform: (o) => ({
        metadata: {
          name: o.metadata!.name,
          namespace: o.metadata!.namespace,
          resourceVersion: o.metadata!.resourceVersion,
        },
      }),
      keep: (o) => o.metadata!.name === 'ref',
      handlers: {
        onUpsert: (o) => seen.push(`${o.metadata!.name}@${o.metadata!.resourceVersion}`),
        onDelete: () => {},
      },
      logger: silentLogger(),
    });
    await r.start();
    try {
      await waitUntil(() => seen.length === 4);
      expect(seen).toEqual(['ref@1', 'other@2', 'big@3', 'ref@4']);
      expect(r.size()).toBe(1);
      expect(r.list()).toEqual([{ metadata: { name: 'ref', namespace: 'ns', resourceVersion: '4' } }]);
    } finally {
      r.stop();
    }
  });
});
