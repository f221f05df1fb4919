// The small world most Mattermost tests start from: a bot, one user, and team "myteam" with its
// "town-square" channel (display name "Town Square") that the bot is a member of.
import { startFakeMattermost, type FakeMattermost } from './index.js';

export interface SeededMattermost {
  mm: FakeMattermost;
  token: string;
  botId: string;
  aliceId: string;
  townSquareId: string;
}

export async function startSeededMattermost(): Promise<SeededMattermost> {
  const mm = await startFakeMattermost();
  const bot = mm.addBot({ username: 'teleport' });
  const aliceId = mm.addUser({ email: 'alice@example.com' }).id;
  mm.addTeam({ name: 'myteam', displayName: 'My Team' });
  const townSquareId = mm.addChannel({
    team: 'myteam',
    name: 'town-square',
    displayName: 'Town Square',
    members: [bot.user.id],
  }).id;
  return { mm, token: bot.token, botId: bot.user.id, aliceId, townSquareId };
}
