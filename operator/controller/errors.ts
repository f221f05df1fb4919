// Errors with a meaning for the work queue.

/** Thrown when a write is attempted by a replica that is not (or no longer) the leader: drop the key. */
export class NotLeaderError extends Error {
  constructor() {
    super('not the leader; write skipped');
    this.name = 'NotLeaderError';
  }
}
