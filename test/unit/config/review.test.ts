// [review]: off by default and exactly as before; when on, every missing or bad setting is a clear error.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfigText } from '../../../operator/config/load.js';
import { problemsOf } from './problems.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'review-config-'));
const keyFile = path.join(dir, 'key');
fs.writeFileSync(keyFile, 'k'.repeat(48) + '\n');
const shortKey = path.join(dir, 'short');
fs.writeFileSync(shortKey, 'tooshort');

const BASE = `
[teleport]
identity = "/var/lib/teleport/identity"
[mattermost]
url = "https://mm.example.com"
token = "tok-123456"
recipients = ["team/ops"]
`;

const withReview = (body: string): string => `${BASE}\n[review]\n${body}`;
const ON = `enabled = true\ncallback_url = "http://plugin-review.teleport.svc:8082/action"\nsigning_key_file = "${keyFile}"\n`;

test('off by default, with defaults', () => {
  const { config, warnings } = parseConfigText(BASE, 't.toml');
  expect(config.review).toMatchObject({
    enabled: false,
    listenAddr: ':8082',
    userIdTrait: 'mattermost_user_id',
    allowEmailUsernameMatch: false,
  });
  expect(warnings.filter((w) => w.includes('review'))).toEqual([]);
});

test('settings without enabled = true are a warning, not a surprise', () => {
  const { config, warnings } = parseConfigText(withReview('callback_url = "http://x:1/a"'), 't.toml');
  expect(config.review?.enabled).toBe(false);
  expect(warnings.join('\n')).toMatch(/review.callback_url set but review.enabled is not true/);
});

test('a complete section loads the key from the file', () => {
  const { config } = parseConfigText(
    withReview(`${ON}mattermost_user_id_trait = "mm_uid"\nallow_email_username_match = true\n`),
    't.toml',
  );
  expect(config.review).toMatchObject({
    enabled: true,
    callbackUrl: 'http://plugin-review.teleport.svc:8082/action',
    userIdTrait: 'mm_uid',
    allowEmailUsernameMatch: true,
    signingKeyFile: keyFile,
  });
  expect(config.review?.signingKey.toString()).toBe('k'.repeat(48));
});

test.each([
  ['enabled = true', /review.callback_url: missing/],
  ['enabled = true', /review.signing_key_file: missing/],
  [`${ON}callback_url = "not a url"`.replace(/callback_url = "http[^\n]+\n/, ''), /absolute http\(s\) URL/],
  [ON.replace('http://plugin', 'ftp://plugin'), /must use http or https/],
  [ON.replace('http://plugin', 'http://u:p@plugin'), /user or password/],
  [ON.replace('/action', '/action#x'), /fragment/],
  [
    ON.replace('http://plugin-review.teleport.svc:8082/action', 'https://mm.example.com/plugins/x'),
    /session token/,
  ],
  [`${ON}listen_addr = "8082"`, /review.listen_addr: must look like/],
  [`${ON}listen_addr = "0.0.0.0:8081"`, /same port as http.listen_addr/],
  [ON.replace(keyFile, shortKey), /8 bytes; use at least 32/],
  [ON.replace(keyFile, path.join(dir, 'missing')), /cannot read .*ENOENT/],
  [`${ON}mattermost_user_id_trait = ""`, /no click could be mapped/],
  [`${ON}mattermost_user_id_trait = "bad trait"`, /must be a trait name/],
  ['enabled = "yes"', /review.enabled: must be true or false/],
])('%s → %s', (body, expected) => {
  expect(problemsOf(withReview(body)).join('\n')).toMatch(expected);
});

test('a key is never shown in a problem', () => {
  const secret = path.join(dir, 'secret-short');
  fs.writeFileSync(secret, 'SECRETVALUE');
  expect(problemsOf(withReview(ON.replace(keyFile, secret))).join('\n')).not.toMatch(/SECRETVALUE/);
});
