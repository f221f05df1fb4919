// Defaults of the watcher configuration: the one place they are written down.
export const DEFAULT_CONFIG_PATH = '/etc/teleport-mattermost.toml';
export const DEFAULT_TELEPORT_ADDR = 'localhost:3025';
export const DEFAULT_REFRESH_IDENTITY_INTERVAL = '1m';
export const DEFAULT_LOG_OUTPUT = 'stderr';
export const DEFAULT_LOG_SEVERITY = 'info';
export const DEFAULT_LOG_FORMAT = 'text';
export const DEFAULT_HTTP_LISTEN_ADDR = ':8081';
/** Upstream reads at most this many bytes of a token file (lib.ReadPassword). */
export const TOKEN_FILE_MAX_BYTES = 2000;
/** The plugin name used for plugin data and Access Monitoring Rules, as upstream. */
export const PLUGIN_NAME = 'mattermost';
