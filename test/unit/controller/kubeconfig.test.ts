// The operator's kubeconfig lookup: what it loads, and the errors that replace client-node's ENOENT and
// its silent http://localhost:8080 fallback.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubeConfigError, loadKubeConfig } from '../../../operator/controller/kubeconfig.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kubeconfig-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function kubeconfig(file: string, server: string, extra = ''): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: ${server}
${extra}
users:
- name: u
  user:
    token: abc
contexts:
- name: test
  context: { cluster: test, user: u }
current-context: test
`,
  );
  return file;
}

const load = (env: NodeJS.ProcessEnv) =>
  loadKubeConfig({ env, home: dir, serviceAccountTokenPath: path.join(dir, 'no-token') });

describe('loadKubeConfig', () => {
  it('loads KUBECONFIG, skipping entries that do not exist as kubectl does', () => {
    const file = kubeconfig(path.join(dir, 'kc.yaml'), 'https://127.0.0.1:6443');
    const kc = load({ KUBECONFIG: `${path.join(dir, 'missing.yaml')}:${file}` });
    expect(kc.getCurrentCluster()?.server).toBe('https://127.0.0.1:6443');
  });

  it('loads ~/.kube/config when KUBECONFIG is not set', () => {
    kubeconfig(path.join(dir, '.kube', 'config'), 'https://10.0.0.1');
    expect(load({}).getCurrentCluster()?.server).toBe('https://10.0.0.1');
  });

  it('says so when KUBECONFIG names no existing file (not ENOENT)', () => {
    expect(() => load({ KUBECONFIG: '/nonexistent' })).toThrow(
      new KubeConfigError(
        'no kubeconfig: KUBECONFIG=/nonexistent names no existing file; set KUBECONFIG to a kubeconfig file or run in-cluster',
      ),
    );
  });

  it('says so when there is no kubeconfig and no in-cluster service account (no localhost:8080 fallback)', () => {
    expect(() => load({})).toThrow(
      /^no kubeconfig: set KUBECONFIG or run in-cluster \(there is no .*\.kube\/config/,
    );
    expect(() => load({ KUBERNETES_SERVICE_HOST: '10.0.0.1' })).toThrow(/^no kubeconfig: set KUBECONFIG/);
  });

  it('refuses a plain-HTTP cluster up front instead of failing every call', () => {
    const file = kubeconfig(path.join(dir, 'kc.yaml'), 'http://127.0.0.1:8080');
    expect(() => load({ KUBECONFIG: file })).toThrow(
      /cluster test is served over plain HTTP \(http:\/\/127\.0\.0\.1:8080\); use its https:\/\/ address/,
    );
    const insecure = kubeconfig(
      path.join(dir, 'insecure.yaml'),
      'http://127.0.0.1:8080',
      '    insecure-skip-tls-verify: true',
    );
    expect(load({ KUBECONFIG: insecure }).getCurrentCluster()?.skipTLSVerify).toBe(true);
  });

  it('names an unreadable kubeconfig file and a missing current context', () => {
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, 'clusters: [');
    expect(() => load({ KUBECONFIG: bad })).toThrow(/^kubeconfig .*bad\.yaml cannot be read: /);
    const noContext = kubeconfig(path.join(dir, 'nc.yaml'), 'https://x');
    fs.writeFileSync(noContext, fs.readFileSync(noContext, 'utf8').replace('current-context: test', ''));
    expect(() => load({ KUBECONFIG: noContext })).toThrow(/no current cluster; set current-context/);
  });
});
