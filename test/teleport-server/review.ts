// Review authorization of the fake Auth server, modelled on Teleport's SubmitAccessReview (RFD 250 and
// lib/auth/auth_with_roles.go, lib/services/access_request.go): users with roles and traits, roles with
// `review_requests.roles` and `review_requests.submit_for_users` (allow and deny, `*` globs), the plugin
// path (submitted_on_behalf_of_author) that applies the *author's* review rights, and the AccessDenied
// messages that tell "already reviewed" and "already resolved" apart. An Auth server without the feature
// ignores field 12, so a plugin submitting for someone else fails closed.
import type { AccessRequest, RequestState, TeleportUser } from '../../operator/teleport/api.js';
import { accessDenied, badParameter } from './backend.js';

export interface FakeRoleConditions {
  /** review_requests.roles: requested roles this role may review (globs). */
  reviewRoles?: string[];
  /** review_requests.submit_for_users: users a plugin may submit reviews for (globs). */
  submitForUsers?: string[];
}

export interface FakeRole {
  name: string;
  allow?: FakeRoleConditions;
  deny?: FakeRoleConditions;
  /** The builtin Admin role: may submit reviews as anyone (tctl on the Auth host). */
  admin?: boolean;
}

export interface FakeUser extends TeleportUser {
  /** Machine ID bots are not allowed as authors in the plugin path. */
  isBot?: boolean;
}

export interface ReviewInput {
  author: string;
  proposedState: RequestState;
  onBehalfOfAuthor: boolean;
}

function globMatch(pattern: string, value: string): boolean {
  if (pattern === '*') return true;
  const re = new RegExp(`^${pattern.split('*').map(escapeRegex).join('.*')}$`);
  return re.test(value);
}
const escapeRegex = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const anyMatch = (patterns: string[] | undefined, value: string): boolean =>
  (patterns ?? []).some((p) => globMatch(p, value));

export class ReviewAuthority {
  readonly users = new Map<string, FakeUser>();
  readonly roles = new Map<string, FakeRole>();
  /** false: an Auth server older than on-behalf reviews (field 12 is an unknown field, ignored). */
  onBehalfSupported = true;

  private rolesOf(name: string): FakeRole[] {
    const user = this.users.get(name);
    return (user?.roles ?? []).map((r) => this.roles.get(r)).filter((r): r is FakeRole => !!r);
  }

  private canSubmitFor(caller: string, author: string): boolean {
    const roles = this.rolesOf(caller);
    if (roles.some((r) => anyMatch(r.deny?.submitForUsers, author))) return false;
    return roles.some((r) => anyMatch(r.allow?.submitForUsers, author));
  }

  private canReview(reviewer: string, req: AccessRequest): boolean {
    if (reviewer === req.user) return false;
    const roles = this.rolesOf(reviewer);
    return req.roles.every(
      (requested) =>
        !roles.some((r) => anyMatch(r.deny?.reviewRoles, requested)) &&
        roles.some((r) => anyMatch(r.allow?.reviewRoles, requested)),
    );
  }

  /**
   * Checks a submission by `caller` (the identity's user) and returns the effective author; throws the
   * status Teleport answers with.
   */
  authorize(caller: string, input: ReviewInput, req: AccessRequest): string {
    if (input.proposedState === 'PROMOTED') {
      throw badParameter('state promoted can be only set when promoting to access list');
    }
    const author = input.author || caller;
    if (input.onBehalfOfAuthor && this.onBehalfSupported && author !== caller) {
      if (!this.canSubmitFor(caller, author)) {
        throw accessDenied(`user "${caller}" is not allowed to submit reviews on behalf of "${author}"`);
      }
      const user = this.users.get(author);
      if (!user || user.isBot) throw accessDenied(`user "${author}" is not a local Teleport user`);
    } else if (author !== caller && !this.rolesOf(caller).some((r) => r.admin)) {
      throw accessDenied(`user "${caller}" cannot submit reviews on behalf of "${author}"`);
    }
    if (!this.canReview(author, req)) {
      throw accessDenied(`user "${author}" cannot review access request "${req.id}"`);
    }
    if (input.proposedState !== 'APPROVED' && input.proposedState !== 'DENIED') {
      throw badParameter(`invalid state proposal: ${input.proposedState} (expected approval/denial)`);
    }
    if (req.reviews.some((r) => r.author === author)) {
      throw accessDenied(`user "${author}" has already reviewed this request`);
    }
    if (req.state !== 'PENDING') {
      throw accessDenied(`the access request has been already ${req.state.toLowerCase()}`);
    }
    return author;
  }

  /** ListUsers: sorted by name, paged by the next name. */
  listUsers(pageToken: string, pageSize: number): { users: FakeUser[]; nextPageToken: string } {
    const all = [...this.users.values()]
      .filter((u) => !pageToken || u.name >= pageToken)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const size = pageSize > 0 ? Math.min(pageSize, 1000) : 1000;
    return { users: all.slice(0, size), nextPageToken: all[size]?.name ?? '' };
  }
}
