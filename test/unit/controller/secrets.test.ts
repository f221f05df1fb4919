// ReferencedSecrets: the data of referenced Secrets only, fetched on demand, re-read after a change.
import { KubeApiError, type KubeApi } from '../../../operator/controller/kubeapi.js';
import { ReferencedSecrets } from '../../../operator/controller/secrets.js';

function fakeApi(store: Map<string, { rv: string; data: Record<string, string> }>) {
  const gets: string[] = [];
  let beforeAnswer: (() => void) | undefined;
  const api = {
    async request(method: string, path: string) {
      const [, , , , ns, , name] = path.split('/');
      gets.push(`${ns}/${name}`);
      await Promise.resolve();
      beforeAnswer?.();
      beforeAnswer = undefined;
      const s = store.get(`${ns}/${name}`);
      if (!s) throw new KubeApiError(404, '{}', `${method} ${path}: HTTP 404`);
      return { metadata: { name, namespace: ns, resourceVersion: s.rv, managedFields: [{}] }, data: s.data };
    },
  } as unknown as KubeApi;
  return { api, gets, onNextAnswer: (f: () => void) => (beforeAnswer = f) };
}

describe('ReferencedSecrets', () => {
  it('fetches referenced Secrets once, keeps the old copy until a changed one is read, remembers absent ones', async () => {
    const store = new Map<string, { rv: string; data: Record<string, string> }>([
      ['ns/token', { rv: '1', data: { token: 'dG9rZW4=' } }],
    ]);
    const { api, gets } = fakeApi(store);
    const referenced = new Set(['ns/token', 'ns/missing']);
    const s = new ReferencedSecrets(api, (k) => referenced.has(k));
    await s.ensure(['ns/token', 'ns/missing']);
    await s.ensure(['ns/token', 'ns/missing']);
    expect(gets).toEqual(['ns/token', 'ns/missing']);
    expect(s.get('ns', 'token')?.data).toEqual({ token: 'dG9rZW4=' });
    expect(s.get('ns', 'token')?.metadata?.managedFields).toBeUndefined();
    expect(s.get('ns', 'missing')).toBeUndefined();
    expect([s.size(), s.dataBytes()]).toEqual([1, 8]);

    expect(s.invalidate('ns/token', '1')).toBe(false); // the version we hold: nothing to do
    store.set('ns/token', { rv: '2', data: { token: 'bmV3' } });
    expect(s.invalidate('ns/token', '2')).toBe(true);
    expect(s.get('ns', 'token')?.data).toEqual({ token: 'dG9rZW4=' }); // still answers until re-read
    store.set('ns/missing', { rv: '3', data: { k: 'dg==' } });
    expect(s.invalidate('ns/missing', '3')).toBe(true);
    await s.ensure(['ns/token', 'ns/missing']);
    expect(s.get('ns', 'token')?.data).toEqual({ token: 'bmV3' });
    expect(s.get('ns', 'missing')?.data).toEqual({ k: 'dg==' });

    referenced.delete('ns/missing');
    s.release('ns/missing');
    expect(s.size()).toBe(1);
  });

  it('reads again when the Secret changed while it was being read', async () => {
    const store = new Map([['ns/id', { rv: '1', data: { identity: 'b2xk' } }]]);
    const { api, gets, onNextAnswer } = fakeApi(store);
    const s = new ReferencedSecrets(api, () => true);
    onNextAnswer(() => {
      // The watch reports a newer version while the first GET is on its way back (with the old data).
      s.invalidate('ns/id', '2');
      store.set('ns/id', { rv: '2', data: { identity: 'bmV3' } });
    });
    await s.ensure(['ns/id']);
    expect(gets).toEqual(['ns/id', 'ns/id']);
    expect(s.get('ns', 'id')?.data).toEqual({ identity: 'bmV3' });
  });

  it('does not keep a Secret no resource references', async () => {
    const { api } = fakeApi(new Map([['ns/x', { rv: '1', data: { a: 'YQ==' } }]]));
    const s = new ReferencedSecrets(api, () => false);
    await s.ensure(['ns/x']);
    expect(s.size()).toBe(0);
  });
});
