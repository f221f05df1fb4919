// A check the relay tests share (kept out of harness.ts, which the demo also runs outside jest).
import { expect } from '@jest/globals';
import type { Stack } from './harness.js';

/** Every request in `ids` has exactly one root post in each of `channelIds`: none missing, none twice. */
export function expectOneRootEach(stack: Stack, channelIds: string[], ids: string[]): void {
  for (const channelId of channelIds) {
    const counts = new Map<string, number>();
    for (const p of stack.mattermost.rootPosts(channelId)) {
      const id = String(p.props.teleport_request_id);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    expect({
      channelId,
      missing: ids.filter((id) => !counts.has(id)),
      duplicated: [...counts].filter(([, n]) => n > 1).map(([id]) => id),
    }).toEqual({ channelId, missing: [], duplicated: [] });
  }
}
