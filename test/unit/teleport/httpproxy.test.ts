import { proxyFromEnv } from '../../../operator/teleport/httpproxy.js';

describe('proxyFromEnv', () => {
  it('uses HTTPS_PROXY (or https_proxy), adding http:// when missing', () => {
    expect(proxyFromEnv('tenant.teleport.sh', { HTTPS_PROXY: 'proxy.corp:3128' })?.display).toBe(
      'http://proxy.corp:3128',
    );
    expect(proxyFromEnv('tenant.teleport.sh', { https_proxy: 'http://u:p@proxy.corp:8080' })?.display).toBe(
      'http://proxy.corp:8080',
    );
    expect(proxyFromEnv('tenant.teleport.sh', {})).toBeUndefined();
  });

  it('never proxies loopback, and honours NO_PROXY hosts, suffixes and *', () => {
    const env = { HTTPS_PROXY: 'http://proxy:3128' };
    expect(proxyFromEnv('localhost', env)).toBeUndefined();
    expect(proxyFromEnv('127.0.0.1', env)).toBeUndefined();
    expect(proxyFromEnv('auth.internal', { ...env, NO_PROXY: 'internal' })).toBeUndefined();
    expect(proxyFromEnv('auth.internal', { ...env, no_proxy: '.internal:3025' })).toBeUndefined();
    expect(proxyFromEnv('teleport.sh', { ...env, NO_PROXY: '*' })).toBeUndefined();
    expect(proxyFromEnv('teleport.sh', { ...env, NO_PROXY: 'example.com' })).toBeDefined();
  });

  it('explains unusable proxy settings', () => {
    expect(() => proxyFromEnv('x.sh', { HTTPS_PROXY: 'https://proxy:443' })).toThrow(
      /only http:\/\/ proxies/,
    );
    expect(() => proxyFromEnv('x.sh', { HTTPS_PROXY: 'http://[bad' })).toThrow(/not a valid URL/);
  });
});
