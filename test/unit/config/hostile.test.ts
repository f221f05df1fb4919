// Hostile or careless configuration (issue 15): each case fails at load with a message naming the key,
// never showing a secret, instead of failing (or wedging) at run time.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfigFile, parseConfigText } from '../../../operator/config/load.js';
import { rawRecipientsFor } from '../../../operator/relay/recipients.js';
import { problemsOf } from './problems.js';

const BASE = `
[teleport]
identity = "/var/lib/teleport/identity"
[mattermost]
url = "https://mm.example.com"
`;

describe('role names that are Object members (item 2)', () => {
  const roles = [
    'constructor',
    'hasOwnProperty',
    'isPrototypeOf',
    '__defineGetter__',
    'toString',
    '__proto__',
  ];

  it('keeps every such role in [role_to_recipients], "__proto__" included', () => {
    const table = roles.map((r, i) => `"${r}" = ["r${i}@example.com"]`).join('\n');
    const { config } = parseConfigText(
      `${BASE}token = "tok-123456"\n[role_to_recipients]\n"*" = ["all@example.com"]\n${table}\n`,
      't.toml',
    );
    expect(Object.keys(config.roleToRecipients).sort()).toEqual([...roles, '*'].sort());
    expect(Object.hasOwn(config.roleToRecipients, '__proto__')).toBe(true);
    roles.forEach((r, i) =>
      expect(rawRecipientsFor(config.roleToRecipients, [r], [])).toEqual([`r${i}@example.com`]),
    );
  });

  it('falls back to "*" for a role named like an Object member that is not configured', () => {
    const map = { '*': ['all@example.com'] };
    for (const role of roles)
      expect(rawRecipientsFor(map, [role, 'editor'], [])).toEqual(['all@example.com']);
  });
});

describe('the token must be a header value (item 4)', () => {
  it.each([
    ['two lines inline', '"abc12345\\nXYZ"', /a line break/],
    ['a zero-width space', '"abc12345\\u200b"', /a non-ASCII character \(U\+200B/],
    ['a control character', '"abc12345\\u0007"', /a control character/],
  ])('rejects %s, naming the key and never the value', (_what, value, message) => {
    const problems = problemsOf(`${BASE}token = ${value}\n`);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^mattermost\.token: contains /);
    expect(problems[0]).toMatch(message);
    expect(problems[0]).not.toContain('abc12345');
  });

  it('names the file for a token file with two lines, and refuses /dev/zero', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tok-'));
    const file = path.join(dir, 'token');
    fs.writeFileSync(file, 'abc12345\nsecond\n');
    const [problem] = problemsOf(`${BASE}token = "${file}"\n`);
    expect(problem).toContain(`mattermost.token (read from the file ${file}): contains a line break`);
    expect(problem).not.toContain('abc12345');
    expect(problemsOf(`${BASE}token = "/dev/zero"\n`)[0]).toMatch(/\/dev\/zero is not a regular file/);
  });

  it('accepts a token file with a trailing newline', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tok-'));
    const file = path.join(dir, 'token');
    fs.writeFileSync(file, 'abc12345\n');
    expect(parseConfigText(`${BASE}token = "${file}"\n`, 't.toml').config.mattermost.token).toBe('abc12345');
  });
});

describe('values that used to fail only at run time (smaller items)', () => {
  it('reports one problem per bad value', () => {
    expect(
      problemsOf(
        `[teleport]\nidentity = "/x"\n[mattermost]\nurl = "mm.example.com"\ntoken = "tok-123456"\n[http]\nlisten_addr = "x:y"\n`,
      ),
    ).toHaveLength(2);
  });

  it('rejects a listen_addr port out of range', () => {
    expect(problemsOf(`${BASE}token = "tok-123456"\n[http]\nlisten_addr = ":99999"\n`)).toEqual([
      `http.listen_addr: port must be 0 to 65535, got ':99999'`,
    ]);
  });

  it('rejects a URL with a space, without showing its password', () => {
    const problems = problemsOf(
      `[teleport]\nidentity = "/x"\n[mattermost]\nurl = "https://bot:S3cret@mm.example.com/my team"\ntoken = "tok-123456"\n`,
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^mattermost\.url: must be a valid URL without spaces/);
    expect(problems[0]).not.toContain('S3cret');
  });

  it('warns once at load when there are no recipients and no role map', () => {
    const { warnings } = parseConfigText(`${BASE}token = "tok-123456"\n`, 't.toml');
    expect(warnings).toEqual([expect.stringMatching(/^no recipients: /)]);
    const withRoles = parseConfigText(
      `${BASE}token = "tok-123456"\n[role_to_recipients]\n"*" = ["a@example.com"]\n`,
      't.toml',
    );
    expect(withRoles.warnings).toEqual([]);
  });
});

describe('the configuration file itself (item 9)', () => {
  it('refuses a device, a FIFO or a huge file at once', async () => {
    const { execFileSync } = await import('node:child_process');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
    const fifo = path.join(dir, 'fifo.toml');
    execFileSync('mkfifo', [fifo]);
    const big = path.join(dir, 'big.toml');
    fs.writeFileSync(big, `# ${'x'.repeat(2 * 1024 * 1024)}\n`);
    for (const [file, message] of [
      ['/dev/zero', /not a regular file/],
      [fifo, /not a regular file/],
      [big, /larger than 1024 KB/],
    ] as const) {
      expect(() => loadConfigFile(file)).toThrow(ConfigError);
      expect(() => loadConfigFile(file)).toThrow(message);
    }
  });
});
