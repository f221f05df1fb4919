import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseIdentity } from '../../../operator/teleport/identity.js';
import type { Identity } from '../../../operator/teleport/identity.js';
import { IdentityRefresher } from '../../../operator/teleport/refresh.js';
import { silentLogger } from '../../../operator/observability/logger.js';
import { identityFileText, TestCA, writeIdentityFile } from '../../teleport-server/ca.js';

const ca = TestCA.create('example.com');

async function until(pred: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('IdentityRefresher', () => {
  it('keeps renewing on the interval, renewal after renewal (not only during start-up)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tp-refresh-'));
    const path = await writeIdentityFile({ dir, ca });
    const seen: Identity[] = [];
    const r = new IdentityRefresher({
      path,
      intervalMs: 40,
      // Directory events are debounced for longer than the test: only the interval can pick renewals up.
      debounceMs: 60_000,
      logger: silentLogger(),
      initial: parseIdentity(identityFileText({ ca }), path),
      onChange: (id) => seen.push(id),
    });
    r.start();
    try {
      await until(() => seen.length === 1, 'first reload');
      for (let i = 2; i <= 4; i++) {
        await writeIdentityFile({ dir, ca, ttlMs: 3600_000 + i * 60_000 });
        await until(() => seen.length === i, `renewal ${i}`);
      }
      expect(new Set(seen.map((s) => s.fingerprint)).size).toBe(4);
    } finally {
      r.stop();
    }
  });

  it('reacts to a Kubernetes-style ..data symlink swap without waiting for the interval', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tp-k8s-'));
    const path = await writeIdentityFile({ dir, ca, symlinkSwap: true });
    const { readFile } = await import('node:fs/promises');
    const seen: Identity[] = [];
    const r = new IdentityRefresher({
      path,
      intervalMs: 3600_000,
      debounceMs: 20,
      logger: silentLogger(),
      initial: parseIdentity(await readFile(path, 'utf8'), path),
      onChange: (id) => seen.push(id),
    });
    r.start();
    try {
      await writeIdentityFile({ dir, ca, symlinkSwap: true });
      await until(() => seen.length === 1, 'swap picked up');
      await writeIdentityFile({ dir, ca, symlinkSwap: true });
      await until(() => seen.length === 2, 'second swap picked up');
    } finally {
      r.stop();
    }
  });

  it('ignores broken or expired files and keeps the current identity', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tp-bad-'));
    const path = await writeIdentityFile({ dir, ca });
    const seen: Identity[] = [];
    const r = new IdentityRefresher({
      path,
      intervalMs: 3600_000,
      logger: silentLogger(),
      initial: parseIdentity(identityFileText({ ca }), path),
      onChange: (id) => seen.push(id),
    });
    await writeFile(path, 'garbage');
    expect(await r.reload()).toBe(false);
    await writeFile(
      path,
      identityFileText({ ca, notBefore: new Date(Date.now() - 7200_000), ttlMs: 3600_000 }),
    );
    expect(await r.reload()).toBe(false);
    await writeFile(path, identityFileText({ ca }));
    expect(await r.reload()).toBe(true);
    expect(await r.reload()).toBe(false); // same identity again: no change
    expect(seen).toHaveLength(1);
    r.stop();
  });

  it('re-reads only for the identity file itself, not for other files in its directory (issue 15)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tp-neighbour-'));
    const path = await writeIdentityFile({ dir, ca });
    let reads = 0;
    const r = new IdentityRefresher({
      path,
      intervalMs: 3600_000,
      debounceMs: 5,
      logger: silentLogger(),
      initial: parseIdentity(identityFileText({ ca }), path),
      onChange: () => undefined,
    });
    const reload = r.reload.bind(r);
    r.reload = (reason?: string) => {
      reads++;
      return reload(reason);
    };
    r.start();
    try {
      for (let i = 0; i < 10; i++) {
        await writeFile(join(dir, 'plugin.log'), `line ${i}\n`, { flag: 'a' });
        await new Promise((res) => setTimeout(res, 20));
      }
      expect(reads).toBe(0);
      await writeIdentityFile({ dir, ca, ttlMs: 7200_000 });
      await until(() => reads > 0, 'identity change picked up');
    } finally {
      r.stop();
    }
  });
});
