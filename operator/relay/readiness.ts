// What /readyz answers for the watcher. Each part of the relay reports its state here; ready() turns
// them into one reason (the first that holds delivery back) or undefined when the relay can deliver.
// Other parts add checks (a reason to be not ready) or notes (detail shown while still ready, such as
// recipients Mattermost refuses) with addCheck / addNote, so this file stays the one place to read.
import { MattermostError, type MattermostApi } from '../mattermost/api.js';
import type { Logger } from '../observability/logger.js';
import type { RelayMetrics } from './metrics.js';
import { sleep } from './retry.js';

export type Check = () => string | undefined;
export type Note = () => string[];

export class Readiness {
  private stopping = false;
  private watchInitialized = false;
  private mattermostReachable = false;
  private readonly checks: Check[] = [];
  private readonly notes: Note[] = [];
  /** Called when Mattermost answers again after being unreachable (waiting requests go at once). */
  onRecovered: () => void = () => undefined;

  constructor(
    private readonly logger: Logger,
    private readonly metrics: RelayMetrics,
  ) {}

  get mattermostUp(): boolean {
    return this.mattermostReachable;
  }

  get watchUp(): boolean {
    return this.watchInitialized;
  }

  /** undefined when ready, otherwise why not (the /readyz body). */
  ready = (): string | undefined => {
    if (this.stopping) return 'shutting down';
    if (!this.watchInitialized) return 'the Teleport watch is not initialised yet';
    if (!this.mattermostReachable) return 'Mattermost is not reachable';
    for (const check of this.checks) {
      const reason = check();
      if (reason !== undefined) return reason;
    }
    return undefined;
  };

  /** Extra lines for the /readyz body (ready or not). */
  detail = (): string[] => this.notes.flatMap((note) => note());

  addCheck(check: Check): void {
    this.checks.push(check);
  }

  addNote(note: Note): void {
    this.notes.push(note);
  }

  setStopping(): void {
    this.stopping = true;
  }

  setWatch(initialized: boolean): void {
    this.watchInitialized = initialized;
    this.metrics.watchInitialized.set(initialized ? 1 : 0);
  }

  setMattermost(ok: boolean): void {
    const changed = ok !== this.mattermostReachable;
    this.mattermostReachable = ok;
    this.metrics.mattermostReachable.set(ok ? 1 : 0);
    if (!changed) return;
    // The client logs the outage itself (one warning, one info line when back: mattermost/transport.ts).
    if (ok) {
      this.logger.debug('Mattermost is reachable');
      this.onRecovered();
    } else {
      this.logger.debug('Mattermost is not reachable; requests are kept and retried');
    }
  }
}

/**
 * Probes Mattermost (GET /users/me) while it is unreachable, so /readyz recovers even when there is
 * nothing to post. `tick` runs on every round (the identity-expiry gauge).
 */
export async function probeMattermost(
  mattermost: MattermostApi,
  readiness: Readiness,
  intervalMs: number,
  tick: () => void,
  signal: AbortSignal,
): Promise<void> {
  while (!signal.aborted) {
    await sleep(intervalMs, signal).catch(() => undefined);
    if (signal.aborted) return;
    tick();
    if (readiness.mattermostUp) continue;
    try {
      await mattermost.getMe();
      readiness.setMattermost(true);
    } catch (err) {
      if (err instanceof MattermostError && !err.temporary) readiness.setMattermost(true);
    }
  }
}
