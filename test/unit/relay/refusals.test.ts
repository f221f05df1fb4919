// The registry of refused recipients: one warning per recipient and reason, counted, listed for /readyz,
// forgotten once a call for the recipient succeeds.
import { fixFor } from '../../../operator/mattermost/refusal.js';
import { captureLogger } from '../../../operator/observability/logger.js';
import { createRelayMetrics } from '../../../operator/relay/metrics.js';
import { RefusalRegistry } from '../../../operator/relay/refusals.js';

function setup() {
  const { logger, lines } = captureLogger();
  const metrics = createRelayMetrics();
  return { lines, metrics, registry: new RefusalRegistry(logger, metrics) };
}

const hidden = { reason: 'emails_hidden' as const, fix: fixFor('emails_hidden') };
const cannotPost = { reason: 'cannot_post' as const, fix: fixFor('cannot_post') };

describe('RefusalRegistry', () => {
  it('warns once per recipient and reason, with the fix, and counts every refusal', async () => {
    const { lines, metrics, registry } = setup();
    registry.report('a@example.com', 'lookup', hidden);
    registry.report('a@example.com', 'lookup', hidden);
    registry.report('b@example.com', 'lookup', hidden);
    registry.report('team/lobby', 'post', cannotPost);
    const warns = lines.filter((l) => l.level === 'warn');
    expect(warns.map((w) => w.recipient)).toEqual(['a@example.com', 'b@example.com', 'team/lobby']);
    expect(warns[0]!.message).toMatch(/skipping it: the bot cannot read emails/);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/teleport_mattermost_refusals_total\{reason="emails_hidden"\} 3/);
    expect(text).toMatch(/teleport_mattermost_refused_recipients 3/);
    expect(registry.detail()).toContain(`refused: a@example.com (emails_hidden, 2x): ${hidden.fix}`);
  });

  it('forgets a recipient once a call for it succeeds, and lookups on reload', async () => {
    const { lines, metrics, registry } = setup();
    registry.report('a@example.com', 'lookup', hidden);
    registry.report('team/lobby', 'post', cannotPost);
    registry.accepted('team/lobby');
    expect(lines.some((l) => l.level === 'info' && /accepts this recipient again/.test(l.message))).toBe(
      true,
    );
    expect(registry.list().map((e) => e.target)).toEqual(['a@example.com']);
    registry.forget('lookup');
    expect(registry.detail()).toEqual([]);
    expect(await metrics.registry.metrics()).toMatch(/teleport_mattermost_refused_recipients 0/);
    registry.report('team/lobby', 'post', cannotPost);
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(3);
  });

  it('keeps /readyz short with many refused recipients', () => {
    const { registry } = setup();
    for (let i = 0; i < 50; i++) registry.report(`u${i}@example.com`, 'lookup', hidden);
    const detail = registry.detail();
    expect(detail).toHaveLength(21);
    expect(detail.at(-1)).toBe('… and 30 more');
  });
});
