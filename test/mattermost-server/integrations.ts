// Interactive message attachments: what the real server hides from clients. Post.StripActionIntegrations
// removes every action's `integration` (url and context) from each post JSON it sends (REST and websocket).

function actionsOf(props: Record<string, unknown>): Array<Record<string, unknown>> {
  const attachments = props.attachments;
  if (!Array.isArray(attachments)) return [];
  return attachments.flatMap((a: unknown) =>
    a && typeof a === 'object' && Array.isArray((a as { actions?: unknown }).actions)
      ? ((a as { actions: unknown[] }).actions.filter((x) => x && typeof x === 'object') as Array<
          Record<string, unknown>
        >)
      : [],
  );
}

/** The stored actions of a post (with their integrations), for the action route. */
export function postActions(props: Record<string, unknown>): Array<Record<string, unknown>> {
  return actionsOf(props);
}

/** A copy of props without any action's `integration`, as every client sees them. */
export function stripIntegrations(props: Record<string, unknown>): Record<string, unknown> {
  if (actionsOf(props).length === 0) return props;
  const copy = structuredClone(props);
  for (const action of actionsOf(copy)) delete action.integration;
  return copy;
}
