// The fake server's storage semantics must match Teleport's, or tests against it prove nothing.
import { status } from '@grpc/grpc-js';
import { FakeBackend } from '../../teleport-server/backend.js';
import type { Watcher, StatusError } from '../../teleport-server/backend.js';
import { Operation } from '../../../operator/teleport/gen/teleport/legacy/client/proto/authservice_pb.js';
import type { Event } from '../../../operator/teleport/gen/teleport/legacy/client/proto/authservice_pb.js';

const params = (resource: string, set: Record<string, string>, expect: Record<string, string> = {}) => ({
  kind: 'access_request',
  resource,
  plugin: 'mattermost',
  set,
  expect,
});

function codeOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    return (err as StatusError).code;
  }
  return undefined;
}

describe('plugin data (dynamic_access.go / plugin_data.go semantics)', () => {
  it('NOT_FOUND when the request does not exist and no data exists', () => {
    const b = new FakeBackend();
    expect(codeOf(() => b.updatePluginData(params('nope', { a: '1' })))).toBe(status.NOT_FOUND);
  });

  it('expected "" passes for an absent entry, a value fails', () => {
    const b = new FakeBackend();
    const r = b.createRequest();
    expect(codeOf(() => b.updatePluginData(params(r.id, { a: '1' }, { a: 'x' })))).toBe(
      status.FAILED_PRECONDITION,
    );
    b.updatePluginData(params(r.id, { a: '1' }, { a: '', b: '' }));
    expect(b.pluginData.get(r.id)?.entries.get('mattermost')).toEqual({ a: '1' });
  });

  it('checks every expected key and leaves data unchanged on mismatch', () => {
    const b = new FakeBackend();
    const r = b.createRequest();
    b.updatePluginData(params(r.id, { a: '1', b: '2' }));
    expect(codeOf(() => b.updatePluginData(params(r.id, { a: '9' }, { a: '1', b: '3' })))).toBe(
      status.FAILED_PRECONDITION,
    );
    expect(b.pluginData.get(r.id)?.entries.get('mattermost')).toEqual({ a: '1', b: '2' });
  });

  it('Set "" deletes a key, and an emptied entry disappears', () => {
    const b = new FakeBackend();
    const r = b.createRequest();
    b.updatePluginData(params(r.id, { a: '1' }));
    b.updatePluginData(params(r.id, { a: '' }));
    expect(b.pluginData.get(r.id)?.entries.has('mattermost')).toBe(false);
    expect(b.getPluginData('access_request', r.id, 'mattermost')).toEqual([]);
  });

  it('data outlives the request and expires an hour after its access expiry', () => {
    const b = new FakeBackend();
    const expires = new Date(Date.now() + 3600_000);
    const r = b.createRequest({ expires });
    b.updatePluginData(params(r.id, { a: '1' }));
    b.deleteRequest(r.id);
    expect(b.pluginData.get(r.id)?.expires?.getTime()).toBe(expires.getTime() + 3600_000);
    b.updatePluginData(params(r.id, { a: '2' }, { a: '1' }));
    expect(b.pluginData.get(r.id)?.entries.get('mattermost')).toEqual({ a: '2' });
  });

  it('rejects other resource kinds', () => {
    const b = new FakeBackend();
    expect(codeOf(() => b.getPluginData('role', 'x', ''))).toBe(status.INVALID_ARGUMENT);
    expect(codeOf(() => b.updatePluginData({ ...params('x', {}), kind: 'role' }))).toBe(
      status.INVALID_ARGUMENT,
    );
  });
});

describe('watchers', () => {
  const collect = (b: FakeBackend, filter: Record<string, string>): Event[] => {
    const events: Event[] = [];
    const w: Watcher = { kinds: new Map([['access_request', filter]]), send: (e) => events.push(e) };
    b.watchers.add(w);
    return events;
  };

  it('applies id/user/state filters to PUT only; DELETE always passes', () => {
    const b = new FakeBackend();
    const events = collect(b, { user: 'bob', state: 'PENDING' });
    const a = b.createRequest({ user: 'alice' });
    const c = b.createRequest({ user: 'bob' });
    b.setState(c.id, 'APPROVED');
    b.deleteRequest(a.id);
    expect(events.map((e) => [Operation[e.Type], e.Resource.case])).toEqual([
      ['PUT', 'AccessRequest'],
      ['DELETE', 'ResourceHeader'],
    ]);
  });

  it('validates kinds like NewWatcher', () => {
    const b = new FakeBackend();
    expect(codeOf(() => b.acceptKinds([], false, new Set()))).toBe(status.PERMISSION_DENIED);
    const kind = (Kind: string, Filter: Record<string, string> = {}) =>
      ({ Kind, Filter, LoadSecrets: false, Name: '', SubKind: '', Version: '' }) as never;
    expect(codeOf(() => b.acceptKinds([kind('access_request', { bogus: '1' })], false, new Set()))).toBe(
      status.INVALID_ARGUMENT,
    );
    const accepted = b.acceptKinds(
      [kind('access_request'), kind('access_monitoring_rule')],
      true,
      new Set(['access_monitoring_rule']),
    );
    expect(accepted.map((k: { Kind: string }) => k.Kind)).toEqual(['access_request']);
    expect(
      codeOf(() =>
        b.acceptKinds([kind('access_monitoring_rule')], false, new Set(['access_monitoring_rule'])),
      ),
    ).toBe(status.PERMISSION_DENIED);
  });

  it('applies review thresholds', () => {
    const b = new FakeBackend({ approveThreshold: 2 });
    const r = b.createRequest();
    expect(b.submitReview(r.id, { author: 'a', proposedState: 'APPROVED' }).state).toBe('PENDING');
    expect(b.submitReview(r.id, { author: 'b', proposedState: 'APPROVED', reason: 'fine' })).toMatchObject({
      state: 'APPROVED',
      resolveReason: 'fine',
    });
    const d = b.createRequest();
    expect(b.submitReview(d.id, { author: 'a', proposedState: 'DENIED' }).state).toBe('DENIED');
  });
});
