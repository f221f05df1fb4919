import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConfigError } from '../../../operator/config/load.js';
import { loadConfigFile, parseConfigText } from '../../../operator/config/load.js';
import { EXAMPLE_CONFIG } from '../../../operator/config/example.js';
import { parseDuration } from '../../../operator/config/duration.js';
import { problemsOf } from './problems.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const EXAMPLES = path.resolve(here, '../../fixtures/guide');

const MINIMAL = `
[teleport]
identity = "/var/lib/teleport/identity"
[mattermost]
url = "https://mm.example.com"
token = "tok-123456"
`;

describe('the guide files and our own example', () => {
  it('parses the upstream guide TOML unchanged, with the auth_server deprecation warning', () => {
    const { config, warnings } = loadConfigFile(path.join(EXAMPLES, 'teleport-mattermost.toml'));
    expect(config.teleport.addr).toBe('myinstance.teleport.sh:443');
    expect(config.teleport.identity).toBe('/var/lib/teleport/plugins/mattermost/identity');
    expect(config.teleport.refreshIdentity).toBe(true);
    expect(config.mattermost.url).toBe('https://mattermost.example.com');
    expect(config.mattermost.token).toBe('api-token');
    expect(config.roleToRecipients).toEqual({ '*': ['myteam/general', 'alice@example.com'] });
    expect(config.log).toEqual({ output: 'stderr', severity: 'info', format: 'text' });
    expect(warnings).toEqual([
      'teleport.auth_server is deprecated; rename it to teleport.addr (same meaning)',
    ]);
  });

  it('accepts what `configure` prints, with every key set', () => {
    const { config, warnings } = parseConfigText(EXAMPLE_CONFIG, 'example.toml');
    expect(warnings).toEqual([]);
    expect(config.teleport).toEqual({
      addr: 'example.com:3025',
      identity: '/var/lib/teleport/plugins/mattermost/auth_id',
      refreshIdentity: true,
      refreshIdentityIntervalMs: 60_000,
    });
    expect(config.mattermost.notifyRequester).toBe(false);
    expect(config.roleToRecipients).toEqual({
      '*': ['my-team-name/access-requests'],
      dev: ['my-team-name/dev-access', 'lead@example.com'],
    });
    expect(config.http.listenAddr).toBe(':8081');
    expect(config.log.format).toBe('text');
  });
});

describe('defaults', () => {
  it('fills every default', () => {
    const { config } = parseConfigText(MINIMAL, 'min.toml');
    expect(config.teleport.addr).toBe('localhost:3025');
    expect(config.teleport.refreshIdentity).toBe(false);
    expect(config.teleport.refreshIdentityIntervalMs).toBe(60_000);
    expect(config.mattermost.recipients).toEqual([]);
    expect(config.roleToRecipients).toEqual({});
    expect(config.log).toEqual({ output: 'stderr', severity: 'info', format: 'text' });
    expect(config.http.listenAddr).toBe(':8081');
    expect(config.source).toBe('min.toml');
  });
});

describe('each key', () => {
  it('teleport.addr wins and auth_server is an alias', () => {
    expect(parseConfigText(`${MINIMAL}\n[http]\n`, 'x').config.teleport.addr).toBe('localhost:3025');
    const t = MINIMAL.replace('[teleport]', '[teleport]\nauth_server = "proxy.example.com:443"');
    expect(parseConfigText(t, 'x').config.teleport.addr).toBe('proxy.example.com:443');
    const t2 = MINIMAL.replace('[teleport]', '[teleport]\naddr = "auth.example.com:3025"');
    expect(parseConfigText(t2, 'x').config.teleport.addr).toBe('auth.example.com:3025');
  });

  it('refresh_identity_interval takes Go durations', () => {
    const t = MINIMAL.replace(
      '[teleport]',
      '[teleport]\nrefresh_identity = true\nrefresh_identity_interval = "1m30s"',
    );
    expect(parseConfigText(t, 'x').config.teleport.refreshIdentityIntervalMs).toBe(90_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('1x')).toBeUndefined();
  });

  it('accepts the TLS key pair style', () => {
    const t = `[teleport]\nclient_key = "/k"\nclient_crt = "/c"\nroot_cas = "/r"\n[mattermost]\nurl = "http://mm:8065"\ntoken = "abcdef"`;
    const { config } = parseConfigText(t, 'x');
    expect(config.teleport).toMatchObject({ clientKey: '/k', clientCrt: '/c', rootCas: '/r' });
    expect(config.teleport.identity).toBeUndefined();
  });

  it('reads a token from a file when it starts with /', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tok-'));
    const file = path.join(dir, 'token');
    fs.writeFileSync(file, '  secret-token-value\n');
    const { config } = parseConfigText(MINIMAL.replace('"tok-123456"', JSON.stringify(file)), 'x');
    expect(config.mattermost.token).toBe('secret-token-value');
    expect(config.mattermost.tokenSource).toBe(file);
  });

  it('reads at most 2000 bytes of a token file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tok-'));
    const file = path.join(dir, 'token');
    fs.writeFileSync(file, 'a'.repeat(2500));
    expect(
      parseConfigText(MINIMAL.replace('"tok-123456"', JSON.stringify(file)), 'x').config.mattermost.token,
    ).toHaveLength(2000);
  });

  it('recipients replace role_to_recipients, with a warning', () => {
    const t = `${MINIMAL}recipients = ["team/chan", "a@example.com"]\n[role_to_recipients]\ndev = "team/dev"`;
    const { config, warnings } = parseConfigText(t, 'x');
    expect(config.roleToRecipients).toEqual({ '*': ['team/chan', 'a@example.com'] });
    expect(warnings[0]).toMatch(/mattermost.recipients is set, so \[role_to_recipients\] is ignored/);
  });

  it('role_to_recipients takes a string or a list', () => {
    const t = `${MINIMAL}[role_to_recipients]\n"*" = "team/all"\ndev = ["team/dev", "lead@example.com"]`;
    expect(parseConfigText(t, 'x').config.roleToRecipients).toEqual({
      '*': ['team/all'],
      dev: ['team/dev', 'lead@example.com'],
    });
  });

  it('accepts a channel display name with spaces, as the upstream docs show', () => {
    const t = `${MINIMAL}recipients = ["myteam/Town Square"]`;
    expect(parseConfigText(t, 'x').config.mattermost.recipients).toEqual(['myteam/Town Square']);
  });

  it('log severity is case-insensitive with upstream aliases, output aliases map to streams', () => {
    for (const [given, want] of [
      ['DEBUG', 'debug'],
      ['Info', 'info'],
      ['warning', 'warn'],
      ['err', 'error'],
      ['ERROR', 'error'],
    ]) {
      const t = `${MINIMAL}[log]\nseverity = "${given}"`;
      expect(parseConfigText(t, 'x').config.log.severity).toBe(want);
    }
    expect(parseConfigText(`${MINIMAL}[log]\noutput = "1"`, 'x').config.log.output).toBe('stdout');
    expect(parseConfigText(`${MINIMAL}[log]\noutput = "/var/log/p.log"`, 'x').config.log.output).toBe(
      '/var/log/p.log',
    );
    expect(parseConfigText(`${MINIMAL}[log]\nformat = "JSON"`, 'x').config.log.format).toBe('json');
  });

  it('ca_file, notify_requester and http.listen_addr', () => {
    const t = `${MINIMAL}ca_file = "/ca.pem"\nnotify_requester = true\n[http]\nlisten_addr = "127.0.0.1:9000"`;
    const { config } = parseConfigText(t, 'x');
    expect(config.mattermost.caFile).toBe('/ca.pem');
    expect(config.mattermost.notifyRequester).toBe(true);
    expect(config.http.listenAddr).toBe('127.0.0.1:9000');
  });

  it('strips a trailing slash from the Mattermost URL', () => {
    const t = MINIMAL.replace('https://mm.example.com', 'https://mm.example.com/');
    expect(parseConfigText(t, 'x').config.mattermost.url).toBe('https://mm.example.com');
  });
});

describe('invalid values give exact, helpful errors', () => {
  const cases: Array<[string, string, string]> = [
    [
      'url without scheme',
      MINIMAL.replace('https://mm.example.com', 'mattermost.example.com'),
      "mattermost.url: must be an http(s) URL, got 'mattermost.example.com'",
    ],
    [
      'missing url',
      MINIMAL.replace('url = "https://mm.example.com"', ''),
      'mattermost.url: missing; set it to your Mattermost server, e.g. "https://mattermost.example.com"',
    ],
    [
      'missing token',
      MINIMAL.replace('token = "tok-123456"', ''),
      "mattermost.token: missing; set the bot's access token, or a path starting with '/' to read it from",
    ],
    [
      'unreadable token file',
      MINIMAL.replace('"tok-123456"', '"/nonexistent/token"'),
      "mattermost.token: cannot read the token file /nonexistent/token (ENOENT); a token starting with '/' is read from that file — check the path and its permissions",
    ],
    [
      'bad recipient',
      `${MINIMAL}recipients = ["general"]`,
      `mattermost.recipients[0]: must be "team/channel" or an email address, got 'general'`,
    ],
    [
      'recipients not a list',
      `${MINIMAL}recipients = "team/chan"`,
      "mattermost.recipients: must be a list of strings, got 'team/chan'",
    ],
    [
      'bad role recipient',
      `${MINIMAL}[role_to_recipients]\ndev = ["team/a/b"]`,
      `role_to_recipients.dev[0]: must be "team/channel" or an email address, got 'team/a/b'`,
    ],
    [
      'role value of wrong type',
      `${MINIMAL}[role_to_recipients]\ndev = 3`,
      'role_to_recipients.dev: must be a string or a list of strings, got 3',
    ],
    [
      'bad severity',
      `${MINIMAL}[log]\nseverity = "loud"`,
      "log.severity: must be one of DEBUG, INFO, WARN, ERROR, got 'loud'",
    ],
    ['bad format', `${MINIMAL}[log]\nformat = "xml"`, `log.format: must be "text" or "json", got 'xml'`],
    [
      'relative log file',
      `${MINIMAL}[log]\noutput = "plugin.log"`,
      `log.output: must be "stderr", "stdout" or an absolute file path, got 'plugin.log'`,
    ],
    [
      'bad listen address',
      `${MINIMAL}[http]\nlisten_addr = "everywhere"`,
      `http.listen_addr: must look like ":8081" or "127.0.0.1:8081", got 'everywhere'`,
    ],
    [
      'bad interval',
      MINIMAL.replace('[teleport]', '[teleport]\nrefresh_identity_interval = "soon"'),
      `teleport.refresh_identity_interval: must be a positive duration such as "1m" or "30s", got 'soon'`,
    ],
    [
      'refresh without identity',
      `[teleport]\nrefresh_identity = true\nclient_key = "/k"\nclient_crt = "/c"\nroot_cas = "/r"\n[mattermost]\nurl = "http://m"\ntoken = "abcd"`,
      'teleport.refresh_identity requires teleport.identity to be set',
    ],
    [
      'identity and key pair',
      MINIMAL.replace('[teleport]', '[teleport]\nclient_key = "/k"'),
      'teleport.identity is mutually exclusive with teleport.client_key, teleport.client_crt and teleport.root_cas; use one credential style',
    ],
    [
      'partial key pair',
      `[teleport]\nclient_key = "/k"\n[mattermost]\nurl = "http://m"\ntoken = "abcd"`,
      'teleport.client_key set but teleport.client_crt, teleport.root_cas missing; the TLS key pair style needs all three',
    ],
    [
      'no credentials',
      `[mattermost]\nurl = "http://m"\ntoken = "abcd"`,
      'teleport: no credentials configured; set teleport.identity to an identity file (tctl auth sign --format=file, or tbot) or set client_key, client_crt and root_cas',
    ],
    [
      'addr without port',
      MINIMAL.replace('[teleport]', '[teleport]\naddr = "teleport.example.com"'),
      `teleport.addr: must be host:port such as "teleport.example.com:443" or "auth:3025", got 'teleport.example.com'`,
    ],
    [
      'bool of wrong type',
      MINIMAL.replace('[teleport]', '[teleport]\nrefresh_identity = "yes"'),
      "teleport.refresh_identity: must be true or false, got 'yes'",
    ],
    ['section of wrong type', `log = 5\n${MINIMAL}`, 'log: must be a table ([log]), got 5'],
    [
      'section given a date (TOML has date literals)',
      `http = 1979-05-27\n${MINIMAL}`,
      'http: must be a table ([http]), got a date',
    ],
    [
      'list of strings with a number',
      `${MINIMAL}recipients = ["a@b.co", 7]`,
      'mattermost.recipients[1]: must be a string, got 7',
    ],
    [
      'a role named __proto__ of the wrong type (reported like any other role)',
      `${MINIMAL}[role_to_recipients]\n"__proto__" = 5`,
      'role_to_recipients.__proto__: must be a string or a list of strings, got 5',
    ],
  ];
  it.each(cases)('%s', (_name, text, message) => {
    expect(problemsOf(text)).toContain(message);
  });

  it('reports TOML syntax errors with the line', () => {
    const problems = problemsOf('[teleport\naddr = 1');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^line 1, column \d+: not valid TOML/);
  });

  it('reports every problem of a broken file at once, with the file name in the message', () => {
    const text = `[teleport]\naddr = "x"\n[mattermost]\nurl = "mm.example.com"\nrecipients = ["bad"]\n[log]\nseverity = "loud"`;
    let error: ConfigError | undefined;
    try {
      parseConfigText(text, '/etc/broken.toml');
    } catch (err) {
      error = err as ConfigError;
    }
    expect(error?.problems.length).toBeGreaterThanOrEqual(6);
    expect(error?.message).toMatch(/^configuration \/etc\/broken.toml has \d+ problems:/);
    for (const key of [
      'mattermost.url',
      'log.severity',
      'teleport.addr',
      'teleport: no credentials',
      'mattermost.token',
      'mattermost.recipients[0]',
    ]) {
      expect(error?.problems.some((p) => p.startsWith(key))).toBe(true);
    }
  });

  it('a missing file says how to create one', () => {
    expect(() => loadConfigFile('/nonexistent/teleport-mattermost.toml')).toThrow(
      /the file does not exist; create it \(`teleport-mattermost configure > file`\) or pass -c PATH/,
    );
  });
});

describe('unknown keys', () => {
  it('warns with the closest known key', () => {
    const t =
      MINIMAL.replace('[teleport]', '[teleport]\nidentty_file = "x"\nrefresh_identiy = true') +
      '\n[mattermot]\n';
    const { warnings } = parseConfigText(t.replace('\n[mattermot]\n', ''), 'x');
    expect(warnings).toContain(
      'unknown key teleport.refresh_identiy is ignored; did you mean teleport.refresh_identity?',
    );
    expect(warnings.some((w) => w.startsWith('unknown key teleport.identty_file is ignored'))).toBe(true);
    const { warnings: w2 } = parseConfigText(`${MINIMAL}\n[lgo]\nseverity = "x"`, 'x');
    expect(w2).toContain('unknown section [lgo] is ignored; did you mean [log]?');
  });
});
