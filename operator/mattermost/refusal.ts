// What a permanent Mattermost error means for the one recipient or post it concerns, and how to fix it.
//
// Classified per call by what the real server answers (observed on Mattermost 11, see the table in the
// README's "When Mattermost refuses" section):
//
//   call                      answer                                                  reason
//   GET /users/email/E        403 api.user.get_user_by_email.permissions.app_error    emails_hidden
//   GET /users/email/E        404                                                     no_such_user
//   channel lookups           404 / 403                                               no_such_channel
//   POST /posts (root)        403 (not a member, unknown channel)                     cannot_post
//   POST /posts (reply)       403 (bot removed from the channel)                      cannot_post
//   POST /posts (reply)       400 api.post.create_post.root_id.app_error              post_deleted
//   PUT /posts/{id}/patch     403 (post deleted or unknown, bot removed)              cannot_edit
//   PUT /posts/{id}/patch     400 api.post.update_post.permissions_time_limit…        edit_time_limit
//   POST or PATCH             400 …can_not_post_to_deleted… / …can_not_update_post_in_deleted…
//                                                                                     channel_archived
//   anything else 400/404/413                                                         rejected
//
// Not refusals: 401 (the token: every call fails until the config is fixed, so the request is retried),
// 429, 5xx, network failures and Unexpected answers (temporary).
import { MattermostError } from './api.js';

export type RefusalAction = 'lookup' | 'post' | 'reply' | 'edit';

export type RefusalReason =
  | 'emails_hidden'
  | 'no_such_user'
  | 'no_such_channel'
  | 'cannot_post'
  | 'cannot_edit'
  | 'post_deleted'
  | 'channel_archived'
  | 'edit_time_limit'
  | 'rejected';

export interface Refusal {
  reason: RefusalReason;
  /** What is wrong and what to do, for the log and /readyz. */
  fix: string;
}

const FIXES: Record<RefusalReason, string> = {
  emails_hidden:
    'the bot cannot read emails (PrivacySettings.ShowEmailAddress is off): give it permission ' +
    '(System Console > Users and Teams > Show Email Address, or a system role that sees emails) or use channel recipients',
  no_such_user: 'no Mattermost user has this email: check the address or invite the user',
  no_such_channel:
    'no such channel the bot can see: check team/channel, and invite the bot to the channel (/invite @<bot>)',
  cannot_post:
    'the bot may not post here: add the bot to the channel (/invite @<bot>) or give it post:all ' +
    '(System Console > Integrations > Bot Accounts)',
  cannot_edit:
    'the bot may not edit this post: it was deleted, or the bot was removed from the channel (add it back)',
  post_deleted: 'the root post was deleted: no more replies in this thread',
  channel_archived: 'the channel is archived: unarchive it or remove it from the recipients',
  edit_time_limit:
    'the bot may not edit posts this old: set ServiceSettings.PostEditTimeLimit to -1 (unlimited); ' +
    'the resolution is replied in the thread instead',
  rejected: 'Mattermost rejected the call',
};

export function fixFor(reason: RefusalReason): string {
  return FIXES[reason];
}

function idHas(err: MattermostError, part: string): boolean {
  return err.appErrorId?.includes(part) ?? false;
}

/** The refusal `err` is for this action, or undefined when it is temporary or not about this recipient. */
export function refusalOf(err: unknown, action: RefusalAction): Refusal | undefined {
  if (!(err instanceof MattermostError) || err.temporary || err.kind === 'Unauthorized') return undefined;
  const is = (reason: RefusalReason): Refusal => ({ reason, fix: FIXES[reason] });
  if (idHas(err, 'can_not_post_to_deleted') || idHas(err, 'can_not_update_post_in_deleted')) {
    return is('channel_archived');
  }
  if (idHas(err, 'permissions_time_limit')) return is('edit_time_limit');
  if (idHas(err, 'get_user_by_email.permissions')) return is('emails_hidden');
  if (idHas(err, 'create_post.root_id')) return is('post_deleted');
  switch (action) {
    case 'lookup':
      if (err.message.includes('/users/email/')) {
        // 403 without the privacy id: the user is hidden from the bot (view_members), same fix.
        return is(err.kind === 'Forbidden' ? 'emails_hidden' : 'no_such_user');
      }
      if (err.kind === 'NotFound' || err.kind === 'Forbidden') return is('no_such_channel');
      break;
    case 'post':
    case 'reply':
      if (err.kind === 'Forbidden') return is('cannot_post');
      break;
    case 'edit':
      if (err.kind === 'Forbidden' || err.kind === 'NotFound') return is('cannot_edit');
      break;
  }
  return { reason: 'rejected', fix: `${FIXES.rejected}: ${err.message}` };
}
