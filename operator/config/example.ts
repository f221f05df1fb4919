// The commented example printed by `teleport-mattermost configure`: every key, defaults shown.
// A test loads it back through parseConfigText, so it cannot drift from the loader.
export const EXAMPLE_CONFIG = `# Example teleport-mattermost configuration (TOML).
# Compatible with the upstream plugin; keys marked (ours) are extensions.

[teleport]
# Teleport Auth (port 3025) or Proxy with TLS routing (443 or 3080).
# For Teleport Enterprise Cloud: "your-account.teleport.sh:443".
addr = "example.com:3025"              # default "localhost:3025"; the old name auth_server is accepted with a warning

# Credentials: an identity file (tctl auth sign --format=file, or tbot's identity output) ...
identity = "/var/lib/teleport/plugins/mattermost/auth_id"
refresh_identity = true                # re-read the identity file when it changes (tbot renews it); default false
refresh_identity_interval = "1m"       # how often to re-read it; default "1m"
# ... or a TLS key pair (tctl auth sign --format=tls); all three together, not with identity:
# client_key = "/var/lib/teleport/plugins/mattermost/auth.key"
# client_crt = "/var/lib/teleport/plugins/mattermost/auth.crt"
# root_cas = "/var/lib/teleport/plugins/mattermost/auth.cas"

[mattermost]
url = "https://mattermost.example.com" # Mattermost server URL (http or https)
token = "api-token"                    # bot access token; a value starting with "/" is a file to read it from
# Where to post every request: "team/channel" (channel name or display name) or a user's email.
# When set, it replaces [role_to_recipients] entirely (upstream behaviour).
# recipients = ["my-team-name/channel-name", "first.last@example.com"]
# ca_file = "/etc/ssl/private-mattermost-ca.pem"  # (ours) CA bundle for a private Mattermost server
notify_requester = false               # (ours) direct-message the requester when the request is resolved

[role_to_recipients]
# Requested role -> recipients; "*" is used for roles without an entry.
"*" = "my-team-name/access-requests"
"dev" = ["my-team-name/dev-access", "lead@example.com"]

[log]
output = "stderr"                      # "stderr", "stdout" or an absolute file path
severity = "INFO"                      # "DEBUG", "INFO", "WARN" or "ERROR"
format = "text"                        # "text" or "json"

[http]
listen_addr = ":8081"                  # (ours) /healthz, /readyz and /metrics

# (ours) Approve/Deny buttons: a click records the reviewer's own Teleport review (docs/native-review.md).
# Needs review_requests.submit_for_users for the plugin's role and each reviewer's trait below.
[review]
enabled = false
# listen_addr = ":8082"                # the click listener, its own port
# callback_url = "http://teleport-plugin-mattermost-review.teleport.svc:8082/mattermost/action"
# mattermost_user_id_trait = "mattermost_user_id"
# allow_email_username_match = false
# signing_key_file = "/var/lib/teleport/plugins/mattermost/review-key"  # >= 32 random bytes
`;
