/*
 * What /readyz answers for the watcher: "this relay can deliver now".
 *
 *   ready = not shutting down
 *         AND the Teleport watch is up (initialised, and not down for longer than the grace period)
 *         AND Mattermost answered with the bot token accepted (not unreachable for longer than the
 *             grace period; a token refused with 401 is not ready at once: no call can succeed)
 *         AND every added check passes.
 *
 * The grace period (tuning.readyGraceMs, 10 s) keeps a reconnect blip from flapping the pod out of its
 * Service; before the first success there is no grace (not ready until both sides answered once).
 * /healthz is liveness only (the process serves HTTP) and never reads this. Notes (addNote) are extra
 * /readyz lines that do not change the answer, e.g. the recipients Mattermost refuses (refusals.ts).
 * The operator's `Available` condition mirrors the Deployment's, which is this probe's answer.
 */
import { MattermostError, type MattermostApi } from '../mattermost/api.js';
import type { Logger } from '../observability/logger.js';
import type { RelayMetrics } from './metrics.js';
import { sleep } from './retry.js';

export type Check = () => string | undefined;
export type Note = () => string[];
/** What the last Mattermost call said about Mattermost as a whole. */
export type MattermostState = 'ok' | 'unreachable' | 'unauthorized';

export const DEFAULT_READY_GRACE_MS = 10_000;

export class Readiness {
  private stopping = false;
  private watchEverUp = false;
  private watchUpNow = false;
  private watchDownSince = 0;
  private watchDownReason = '';
  private mmEverOk = false;
  private mmState: MattermostState = 'unreachable';
  private mmBadSince = 0;
  private readonly checks: Check[] = [];
  private readonly notes: Note[] = [];
  /** Called when Mattermost answers again after being unreachable (waiting requests go at once). */
  onRecovered: () => void = () => undefined;

  constructor(
    private readonly logger: Logger,
    private readonly metrics: RelayMetrics,
    private readonly graceMs: number = DEFAULT_READY_GRACE_MS,
    private readonly now: () => number = Date.now,
  ) {}

  get mattermostUp(): boolean {
    return this.mmState === 'ok';
  }

  /** The watch has been initialised at least once (catch-up ran). */
  get watchUp(): boolean {
    return this.watchEverUp;
  }

  /** undefined when ready, otherwise why not (the /readyz body). */
  ready = (): string | undefined => {
    if (this.stopping) return 'shutting down';
    const watch = this.watchProblem();
    if (watch) return watch;
    const mm = this.mattermostProblem();
    if (mm) return mm;
    for (const check of this.checks) {
      const reason = check();
      if (reason !== undefined) return reason;
    }
    return undefined;
  };

  private watchProblem(): string | undefined {
    if (!this.watchEverUp) return 'the Teleport watch is not initialised yet';
    if (this.watchUpNow || this.now() - this.watchDownSince < this.graceMs) return undefined;
    return `the Teleport watch is down${this.watchDownReason ? ` (${this.watchDownReason})` : ''}; reconnecting`;
  }

  private mattermostProblem(): string | undefined {
    if (this.mmState === 'ok') return undefined;
    if (this.mmState === 'unauthorized') {
      return 'Mattermost refuses the bot token (401): fix [mattermost] token, then reload (SIGHUP) or update the token file';
    }
    if (this.mmEverOk && this.now() - this.mmBadSince < this.graceMs) return undefined;
    return 'Mattermost is not reachable';
  }

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

  /** INIT: the watch is up. */
  watchInitialized(): void {
    this.watchEverUp = true;
    this.watchUpNow = true;
    this.watchDownReason = '';
    this.metrics.watchInitialized.set(1);
  }

  /** The watch stream failed; the client reconnects and sends INIT again. */
  watchLost(reason: string): void {
    if (!this.watchUpNow) return;
    this.watchUpNow = false;
    this.watchDownSince = this.now();
    this.watchDownReason = reason;
    this.metrics.watchInitialized.set(0);
  }

  setMattermost(state: MattermostState | boolean): void {
    const next: MattermostState = state === true ? 'ok' : state === false ? 'unreachable' : state;
    const prev = this.mmState;
    if (next === prev) return;
    this.mmState = next;
    this.metrics.mattermostReachable.set(next === 'ok' ? 1 : 0);
    if (prev === 'ok') this.mmBadSince = this.now();
    // The client logs the outage itself (one warning, one info line when back: mattermost/transport.ts).
    if (next === 'ok') {
      this.mmEverOk = true;
      this.logger.debug('Mattermost is reachable');
      this.onRecovered();
    } else if (next === 'unauthorized') {
      this.logger.error(
        'Mattermost refuses the bot token (401); nothing can be delivered until it is fixed',
        {
          hint: 'fix [mattermost] token, then reload (SIGHUP) or update the token file',
        },
      );
    } else {
      this.logger.debug('Mattermost is not reachable; requests are kept and retried');
    }
  }
}

/** Maps a failed Mattermost call to what it says about Mattermost as a whole (undefined: nothing). */
export function mattermostStateOf(err: unknown): MattermostState | undefined {
  if (!(err instanceof MattermostError)) return undefined;
  if (err.kind === 'Unauthorized') return 'unauthorized';
  if (err.kind === 'Unavailable' || err.kind === 'Unexpected') return 'unreachable';
  return 'ok';
}

/**
 * Probes Mattermost (GET /users/me) while it is unreachable or refuses the token, so /readyz recovers
 * even when there is nothing to post. `tick` runs on every round (the identity-expiry gauge).
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
    await checkMattermostNow(mattermost, readiness);
  }
}

/** Asks Mattermost who we are (GET /users/me) and records what the answer says about reachability. */
export async function checkMattermostNow(mattermost: MattermostApi, readiness: Readiness): Promise<void> {
  try {
    await mattermost.getMe();
    readiness.setMattermost('ok');
  } catch (err) {
    const state = mattermostStateOf(err);
    if (state) readiness.setMattermost(state);
  }
}
