// Recipients to channel ids: an email to the direct channel between the bot and that user, `team/channel`
// by handle first, then by display name among the bot's own teams and channels.
import { MattermostError, type MattermostUser, type ResolvedRecipient } from './api.js';
import { isChannelHandle, isTeamHandle, sameDisplayName } from './recipient.js';
import type { Transport } from './transport.js';

interface ServerChannel {
  id: string;
  name: string;
  display_name: string;
  type: string;
  team_id: string;
  delete_at?: number;
}

interface ServerTeam {
  id: string;
  name: string;
  display_name: string;
}

const enc = encodeURIComponent;

export interface Lookups {
  resolveEmail(recipient: string, email: string): Promise<ResolvedRecipient>;
  resolveChannel(recipient: string, team: string, channel: string): Promise<ResolvedRecipient>;
}

function isNotFound(err: unknown): boolean {
  return err instanceof MattermostError && err.kind === 'NotFound';
}

export function createLookups(t: Transport, botUser: () => Promise<MattermostUser>): Lookups {
  async function resolveEmail(recipient: string, email: string): Promise<ResolvedRecipient> {
    const user = await t
      .call<{ id: string }>('GET /users/email/{email}', `/users/email/${enc(email)}`, 'GET')
      .catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
        const e = err as MattermostError;
        throw new MattermostError(
          'NotFound',
          `Mattermost has no user with the email ${JSON.stringify(email)} (recipient ${JSON.stringify(recipient)}; ` +
            `GET /users/email/{email}).`,
          e.status,
          undefined,
          false,
          e.appErrorId,
        );
      });
    const bot = await botUser();
    const channel = await t.call<ServerChannel>('POST /channels/direct', '/channels/direct', 'POST', [
      bot.id,
      user.id,
    ]);
    return { recipient, kind: 'user', channelId: channel.id };
  }

  async function findTeam(team: string, recipient: string): Promise<ServerTeam> {
    if (isTeamHandle(team)) {
      try {
        return await t.call<ServerTeam>('GET /teams/name/{team}', `/teams/name/${enc(team)}`, 'GET');
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    // Fall back to the display name among the bot's teams.
    const mine = await t.call<ServerTeam[]>('GET /users/me/teams', '/users/me/teams', 'GET');
    const matches = listOf(mine).filter(
      (x) => sameDisplayName(x.display_name, team) || x.name === team.toLowerCase(),
    );
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) {
      throw new MattermostError(
        'BadRequest',
        `Recipient ${JSON.stringify(recipient)}: several teams are called ${JSON.stringify(team)} ` +
          `(${matches.map((x) => x.name).join(', ')}); use the team's handle from its URL.`,
      );
    }
    throw new MattermostError(
      'NotFound',
      `Recipient ${JSON.stringify(recipient)}: no team ${JSON.stringify(team)} (by handle or display name) that the ` +
        `bot belongs to; add the bot to the team.`,
      404,
    );
  }

  async function resolveChannel(
    recipient: string,
    team: string,
    channel: string,
  ): Promise<ResolvedRecipient> {
    if (isTeamHandle(team) && isChannelHandle(channel)) {
      try {
        const ch = await t.call<ServerChannel>(
          'GET /teams/name/{team}/channels/name/{channel}',
          `/teams/name/${enc(team)}/channels/name/${enc(channel)}?include_deleted=false`,
          'GET',
        );
        return { recipient, kind: 'channel', channelId: ch.id };
      } catch (err) {
        // Not found by handle: it may be a display name that happens to look like a handle.
        if (!isNotFound(err)) throw err;
      }
    }
    // Display name ("myteam/Town Square", as the upstream docs write it) among the bot's channels:
    // the bot can only post where it is a member, so these are the only candidates.
    const tm = await findTeam(team, recipient);
    const channels = await t.call<ServerChannel[]>(
      'GET /users/me/teams/{team_id}/channels',
      `/users/me/teams/${enc(tm.id)}/channels?include_deleted=false`,
      'GET',
    );
    const candidates = listOf(channels).filter((c) => c.type === 'O' || c.type === 'P');
    const exact = candidates.filter((c) => c.display_name === channel.trim());
    const loose = candidates.filter(
      (c) => sameDisplayName(c.display_name, channel) || c.name === channel.trim().toLowerCase(),
    );
    const matches = exact.length > 0 ? exact : loose;
    if (matches.length === 1) return { recipient, kind: 'channel', channelId: matches[0]!.id };
    if (matches.length > 1) {
      throw new MattermostError(
        'BadRequest',
        `Recipient ${JSON.stringify(recipient)}: several channels in team ${tm.name} are called ` +
          `${JSON.stringify(channel)} (${matches.map((c) => c.name).join(', ')}); use "${tm.name}/<handle>" with ` +
          `the handle from the channel's URL.`,
      );
    }
    throw new MattermostError(
      'NotFound',
      `Recipient ${JSON.stringify(recipient)}: no channel ${JSON.stringify(channel)} (by handle or display name) in ` +
        `team ${tm.name} that the bot is a member of; invite the bot with /invite @<bot> in that channel.`,
      404,
    );
  }

  return { resolveEmail, resolveChannel };
}

/** A list answer that is not a list is a garbled answer, not an empty result. */
function listOf<T>(value: T[]): T[] {
  if (!Array.isArray(value)) {
    throw new MattermostError(
      'Unexpected',
      'Mattermost answered a list call with something else than a list.',
    );
  }
  return value;
}
