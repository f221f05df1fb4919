import { parseConfigText } from '../../../operator/config/load.js';
import { CONFIG_PATH, IDENTITY_DIR, TOKEN_DIR } from '../../../operator/controller/defaults.js';
import {
  hashParts,
  inSpecFieldNames,
  renderConfig,
  SpecError,
  validateSpec,
} from '../../../operator/controller/render.js';
import type { MattermostAccessPluginSpec } from '../../../operator/controller/types.js';

function spec(overrides: Partial<MattermostAccessPluginSpec['mattermost']> = {}): MattermostAccessPluginSpec {
  return {
    teleport: {
      address: 'teleport.example.com:443',
      identitySecretRef: { name: 'id', key: 'identity' },
      refreshIdentity: true,
    },
    mattermost: {
      url: 'https://mattermost.example.com/',
      tokenSecretRef: { name: 'tok', key: 'token' },
      recipients: ['alice@example.com', 'team/example-channel'],
      ...overrides,
    },
    log: { severity: 'INFO', format: 'text' },
  };
}

const load = (toml: string) => parseConfigText(toml, CONFIG_PATH, { readTokenFile: false });

describe('renderConfig', () => {
  it('renders TOML the watcher accepts: identity file in the mounted directory, refresh on, token as a file path', () => {
    const { toml, recipientCount } = renderConfig(spec());
    const { config, warnings } = load(toml);
    expect(warnings).toEqual([]);
    expect(config.teleport).toMatchObject({
      addr: 'teleport.example.com:443',
      identity: `${IDENTITY_DIR}/identity`,
      refreshIdentity: true,
    });
    expect(config.mattermost.tokenSource).toBe(`${TOKEN_DIR}/token`);
    expect(config.mattermost.url).toBe('https://mattermost.example.com');
    expect(config.roleToRecipients).toEqual({ '*': ['alice@example.com', 'team/example-channel'] });
    expect(config.log).toEqual({ output: 'stderr', severity: 'info', format: 'text' });
    expect(config.http.listenAddr).toBe(':8081');
    expect(recipientCount).toBe(2);
  });

  it('renders recipients as the "*" entry when roleToRecipients is also set, so both keep their meaning', () => {
    const { toml, recipientCount } = renderConfig(
      spec({ roleToRecipients: { dev: ['team/dev', 'alice@example.com'] } }),
    );
    expect(toml).not.toMatch(/^recipients\s*=/m);
    const { config, warnings } = load(toml);
    expect(warnings).toEqual([]);
    expect(config.roleToRecipients).toEqual({
      dev: ['team/dev', 'alice@example.com'],
      '*': ['alice@example.com', 'team/example-channel'],
    });
    expect(recipientCount).toBe(3);
  });

  it('renders roleToRecipients alone as [role_to_recipients]', () => {
    const { toml } = renderConfig(
      spec({ recipients: [], roleToRecipients: { '*': ['team/ops'], admin: ['bob@example.com'] } }),
    );
    expect(load(toml).config.roleToRecipients).toEqual({ '*': ['team/ops'], admin: ['bob@example.com'] });
  });

  it('passes optional settings through: interval, CA file, notify requester, severity and format', () => {
    const s = spec({ caSecretRef: { name: 'ca' }, notifyRequester: true });
    s.teleport.refreshIdentityInterval = '30s';
    s.log = { severity: 'debug', format: 'json' };
    const { config } = load(renderConfig(s).toml);
    expect(config.teleport.refreshIdentityIntervalMs).toBe(30_000);
    expect(config.mattermost.caFile).toMatch(/^\/.*ca\.crt$/);
    expect(config.mattermost.notifyRequester).toBe(true);
    expect(config.log).toMatchObject({ severity: 'debug', format: 'json' });
  });

  it('never contains the token itself', () => {
    expect(renderConfig(spec()).toml).toContain(`token = "${TOKEN_DIR}/token"`);
  });

  it('is deterministic', () => {
    expect(renderConfig(spec()).toml).toBe(renderConfig(spec()).toml);
  });

  it('lists every problem of an invalid spec', () => {
    let err: unknown;
    try {
      renderConfig(
        spec({ recipients: ['bob', 'team/ok'], roleToRecipients: { '*': ['x@example.com'], dev: ['nope'] } }),
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpecError);
    const problems = (err as SpecError).problems;
    expect(problems).toEqual([
      `spec.mattermost.recipients[0] must be "team/channel" or an email address, got 'bob'`,
      `spec.mattermost.roleToRecipients["dev"][0] must be "team/channel" or an email address, got 'nope'`,
      'spec.mattermost.recipients and spec.mattermost.roleToRecipients["*"] both set the default recipients; keep one of them',
    ]);
  });

  it('reports what the watcher would reject (e.g. a bad address stored under an older schema)', () => {
    const s = spec();
    s.teleport.address = 'no-port';
    expect(() => renderConfig(s)).toThrow(
      /the rendered configuration is invalid: spec\.teleport\.address: must be host:port/,
    );
  });

  it('names CR fields, not the rendered TOML keys, in watcher messages', () => {
    expect(inSpecFieldNames('run tbot to renew them and set refresh_identity = true')).toBe(
      'run tbot to renew them and set spec.teleport.refreshIdentity: true',
    );
    expect(inSpecFieldNames("teleport.refresh_identity_interval: must be a duration, got 'x'")).toBe(
      "spec.teleport.refreshIdentityInterval: must be a duration, got 'x'",
    );
    expect(inSpecFieldNames('mattermost.recipients is set, so [role_to_recipients] is ignored')).toBe(
      'spec.mattermost.recipients is set, so spec.mattermost.roleToRecipients is ignored',
    );
    expect(inSpecFieldNames('spec.teleport.identitySecretRef and spec.mattermost.url stay')).toBe(
      'spec.teleport.identitySecretRef and spec.mattermost.url stay',
    );
  });

  it('validateSpec names missing fields', () => {
    expect(validateSpec(undefined)).toEqual(['spec is missing']);
    expect(validateSpec({} as MattermostAccessPluginSpec)).toHaveLength(4);
  });
});

describe('hashParts', () => {
  it('changes with any part and separates parts', () => {
    expect(hashParts('a', 'b')).not.toBe(hashParts('ab', ''));
    expect(hashParts('a')).toMatch(/^[0-9a-f]{32}$/);
    expect(hashParts('a')).toBe(hashParts('a'));
  });
});
