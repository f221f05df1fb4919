// What each Mattermost answer means for the one recipient or post it concerns (refusal.ts), per call,
// as the real server answers (shared reference: real-mattermost.md).
import { MattermostError } from '../../../operator/mattermost/api.js';
import { maskUrl, normalizeBaseUrl } from '../../../operator/mattermost/connection.js';
import { errorFromResponse } from '../../../operator/mattermost/errors.js';
import { refusalOf, type RefusalAction } from '../../../operator/mattermost/refusal.js';

const answer = (op: string, status: number, id = 'api.context.permissions.app_error') =>
  errorFromResponse(op, 'https://mm.example.com/api/v4/x', status, new Headers(), {
    id,
    message: 'm',
    status_code: status,
  });

describe('refusalOf: classified per call by what the server answers', () => {
  it.each<[string, RefusalAction, string, number, string | undefined, string | undefined]>([
    // call, action, op, status, AppError id, reason (undefined: not a refusal: retried)
    [
      'email lookup, privacy on',
      'lookup',
      'GET /users/email/{email}',
      403,
      'api.user.get_user_by_email.permissions.app_error',
      'emails_hidden',
    ],
    [
      'email lookup, user hidden',
      'lookup',
      'GET /users/email/{email}',
      403,
      'api.context.permissions.app_error',
      'emails_hidden',
    ],
    [
      'email lookup, unknown',
      'lookup',
      'GET /users/email/{email}',
      404,
      'app.user.missing_account.const',
      'no_such_user',
    ],
    [
      'channel by name, private non-member',
      'lookup',
      'GET /teams/name/{team}/channels/name/{channel}',
      404,
      'app.channel.get_by_name.missing.app_error',
      'no_such_channel',
    ],
    [
      'channel of a team the bot is not in',
      'lookup',
      'GET /teams/name/{team}/channels/name/{channel}',
      403,
      undefined,
      'no_such_channel',
    ],
    ['root post, not a member', 'post', 'POST /posts', 403, undefined, 'cannot_post'],
    [
      'root post, archived channel',
      'post',
      'POST /posts',
      400,
      'api.post.create_post.can_not_post_to_deleted.error',
      'channel_archived',
    ],
    [
      'root post, too long',
      'post',
      'POST /posts',
      400,
      'model.post.is_valid.message_length.app_error',
      'rejected',
    ],
    ['reply, bot removed', 'reply', 'POST /posts', 403, undefined, 'cannot_post'],
    [
      'reply, root deleted',
      'reply',
      'POST /posts',
      400,
      'api.post.create_post.root_id.app_error',
      'post_deleted',
    ],
    [
      'reply, archived channel',
      'reply',
      'POST /posts',
      400,
      'api.post.create_post.can_not_post_to_deleted.error',
      'channel_archived',
    ],
    [
      'patch, post deleted or unknown or bot removed',
      'edit',
      'PUT /posts/{post_id}/patch',
      403,
      undefined,
      'cannot_edit',
    ],
    [
      'patch, edit time limit',
      'edit',
      'PUT /posts/{post_id}/patch',
      400,
      'api.post.update_post.permissions_time_limit.app_error',
      'edit_time_limit',
    ],
    [
      'patch, archived channel',
      'edit',
      'PUT /posts/{post_id}/patch',
      400,
      'api.post.patch_post.can_not_update_post_in_deleted.error',
      'channel_archived',
    ],
    [
      'any call, token rejected',
      'post',
      'POST /posts',
      401,
      'api.context.session_expired.app_error',
      undefined,
    ],
    ['any call, rate limited', 'post', 'POST /posts', 429, undefined, undefined],
    ['any call, server error', 'edit', 'PUT /posts/{post_id}/patch', 500, undefined, undefined],
    [
      'concurrent pending_post_id',
      'post',
      'POST /posts',
      500,
      'api.post.deduplicate_create_post.pending',
      undefined,
    ],
  ])('%s → %s', (_what, action, op, status, id, reason) => {
    const err = answer(op, status, id);
    expect(refusalOf(err, action)?.reason).toBe(reason);
    if (reason) expect(refusalOf(err, action)?.fix.length).toBeGreaterThan(20);
  });

  it('an Unexpected answer (not the API JSON) and a network failure are never refusals', () => {
    expect(refusalOf(new MattermostError('Unexpected', 'login page', 200), 'post')).toBeUndefined();
    expect(refusalOf(new MattermostError('Unavailable', 'reset'), 'lookup')).toBeUndefined();
    expect(refusalOf(new Error('bug'), 'post')).toBeUndefined();
  });

  it('names the fixes the issue asks for', () => {
    expect(refusalOf(answer('POST /posts', 403), 'post')?.fix).toMatch(
      /add the bot to the channel.*or give it post:all/,
    );
    expect(
      refusalOf(
        answer('GET /users/email/{email}', 403, 'api.user.get_user_by_email.permissions.app_error'),
        'lookup',
      )?.fix,
    ).toMatch(/the bot cannot read emails.*give it permission.*or use channel recipients/);
  });
});

describe('URL credentials', () => {
  it('maskUrl hides user name and password', () => {
    expect(maskUrl('https://admin:S3cret@mm.example.com/x')).toBe('https://***@mm.example.com/x');
    expect(maskUrl('https://mm.example.com')).toBe('https://mm.example.com');
    expect(maskUrl('not a url //admin:S3cret@host')).not.toContain('S3cret');
  });

  it('normalizeBaseUrl drops them and never shows them in its errors', () => {
    expect(normalizeBaseUrl('https://admin:S3cret@mm.example.com/api/v4')).toBe('https://mm.example.com');
    expect(() => normalizeBaseUrl('ftp://admin:S3cret@mm.example.com')).toThrow(/\*\*\*@/);
    try {
      normalizeBaseUrl('ftp://admin:S3cret@mm.example.com');
    } catch (err) {
      expect((err as Error).message).not.toContain('S3cret');
    }
  });
});
