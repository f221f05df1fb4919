// Maps a Mattermost user id to exactly one Teleport user: the user whose trait (mattermost_user_id by
// default) holds that id, matched exactly here (the server-side trait filter is newer, and the keyword
// search matches substrings). Listing users is O(users), so the trait index is built once per TTL and
// shared by concurrent clicks; a short TTL bounds how long a removed trait keeps working.
import type { TeleportReviewApi } from '../teleport/api.js';

export type UserMatch =
  | { kind: 'user'; name: string; via: 'trait' | 'email' }
  | { kind: 'none' }
  | { kind: 'ambiguous'; names: string[] };

export interface UserMapperOptions {
  trait: string;
  allowEmailUsernameMatch: boolean;
  /** The Mattermost user's email ('' when hidden by privacy settings). */
  emailOf: (mattermostUserId: string) => Promise<string>;
  ttlMs?: number;
  pageSize?: number;
  now?: () => number;
}

const DEFAULT_TTL_MS = 30_000;

export class UserMapper {
  private index: { built: number; value: Promise<Map<string, string[]>> } | undefined;

  constructor(
    private readonly teleport: Pick<TeleportReviewApi, 'listUsers' | 'getUser'>,
    private readonly opts: UserMapperOptions,
  ) {}

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }

  /** trait value → Teleport user names holding it. */
  private traitIndex(): Promise<Map<string, string[]>> {
    const ttl = this.opts.ttlMs ?? DEFAULT_TTL_MS;
    if (this.index && this.now() - this.index.built < ttl) return this.index.value;
    const value = this.buildIndex();
    const entry = { built: this.now(), value };
    this.index = entry;
    value.catch(() => {
      if (this.index === entry) this.index = undefined;
    });
    return value;
  }

  private async buildIndex(): Promise<Map<string, string[]>> {
    const byValue = new Map<string, string[]>();
    let token = '';
    do {
      const page = await this.teleport.listUsers(token, this.opts.pageSize ?? 500);
      for (const user of page.users) {
        for (const v of new Set(user.traits[this.opts.trait] ?? [])) {
          byValue.set(v, [...(byValue.get(v) ?? []), user.name]);
        }
      }
      token = page.nextPageToken;
    } while (token);
    return byValue;
  }

  async resolve(mattermostUserId: string): Promise<UserMatch> {
    if (this.opts.trait) {
      const names = (await this.traitIndex()).get(mattermostUserId) ?? [];
      if (names.length === 1) return { kind: 'user', name: names[0]!, via: 'trait' };
      if (names.length > 1) return { kind: 'ambiguous', names: [...names].sort() };
    }
    if (!this.opts.allowEmailUsernameMatch) return { kind: 'none' };
    const email = (await this.opts.emailOf(mattermostUserId)).trim();
    if (!email) return { kind: 'none' };
    const user = await this.teleport.getUser(email);
    return user && user.name === email ? { kind: 'user', name: user.name, via: 'email' } : { kind: 'none' };
  }
}
