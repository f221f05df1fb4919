// The operator's fixed names and defaults: the one place each is written down.
import { packageVersion } from '../version.js';

/** Watcher image used when neither the CR's spec.image nor --watcher-image say otherwise. */
export const DEFAULT_WATCHER_IMAGE = `ghcr.io/teleport-plugins/teleport-plugin-mattermost:${packageVersion()}`;

export const GROUP = 'teleport-plugins.dev';
export const VERSION = 'v1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'MattermostAccessPlugin';
export const PLURAL = 'mattermostaccessplugins';

/** The single server-side-apply field manager of every write the operator makes. */
export const FIELD_MANAGER = 'mattermost-access-plugin-operator';
/** Reported as the Events' source component. */
export const EVENT_COMPONENT = 'teleport-mattermost-operator';

export const LABEL_NAME = 'app.kubernetes.io/name';
export const LABEL_INSTANCE = 'app.kubernetes.io/instance';
export const LABEL_VERSION = 'app.kubernetes.io/version';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
export const LABEL_PART_OF = 'app.kubernetes.io/part-of';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const APP_NAME = 'teleport-plugin-mattermost';
export const COMPONENT_WATCHER = 'watcher';
export const MANAGED_BY = 'teleport-mattermost-operator';

/** Pod-template annotation holding the hash of the rendered config: a change rolls the pods. */
export const CONFIG_HASH_ANNOTATION = `${GROUP}/config-hash`;
/** Set by the Helm chart on the resource: values it accepted but could not honour, one per line. */
export const CHART_WARNINGS_ANNOTATION = `${GROUP}/chart-warnings`;

/** Where the watcher finds its files inside the pod. */
export const CONFIG_DIR = '/etc/teleport-mattermost';
export const CONFIG_FILE_NAME = 'teleport-mattermost.toml';
export const CONFIG_PATH = `${CONFIG_DIR}/${CONFIG_FILE_NAME}`;
export const IDENTITY_DIR = '/var/lib/teleport/plugins/mattermost/teleport-identity';
export const TOKEN_DIR = '/var/lib/teleport/plugins/mattermost/mattermost-token';
export const TOKEN_FILE_NAME = 'token';
export const CA_DIR = '/var/lib/teleport/plugins/mattermost/mattermost-ca';
export const CA_FILE_NAME = 'ca.crt';
export const TMP_DIR = '/tmp';

export const WATCHER_CONTAINER = 'watcher';
export const WATCHER_HTTP_PORT = 8081;
export const WATCHER_UID = 65532;
/**
 * Mode of mounted Secret/ConfigMap files: owner and group read only. The pod's fsGroup is the watcher's
 * group, so the non-root watcher can read them (0600 would leave them root-only under fsGroup).
 */
export const VOLUME_MODE = 0o440;

export const DEFAULT_IDENTITY_KEY = 'identity';
export const DEFAULT_TOKEN_KEY = 'token';
export const DEFAULT_CA_KEY = 'ca.crt';

/** Controller tuning. */
export const DEFAULT_RESYNC_MS = 10 * 60_000;
export const DEFAULT_WORKERS = 2;
export const BACKOFF_BASE_MS = 5;
export const BACKOFF_MAX_MS = 5 * 60_000;
export const GLOBAL_QPS = 10;
export const GLOBAL_BURST = 100;
/** Re-check an identity this long before it expires (or at most this often when it is healthy). */
export const IDENTITY_RECHECK_MAX_MS = 60 * 60_000;
/** A CR whose Secret is missing is retried this often even without an event. */
export const MISSING_SECRET_RETRY_MS = 30_000;

/**
 * tbot, when a CR sets spec.teleport.tbot: Teleport's distroless tbot image at a pinned Teleport version
 * (spec.teleport.tbot.image overrides it), and the suffixes of the objects run for it.
 */
export const TBOT_TELEPORT_VERSION = '18.2.0';
export const DEFAULT_TBOT_IMAGE = `public.ecr.aws/gravitational/tbot-distroless:${TBOT_TELEPORT_VERSION}`;
export const TBOT_SUFFIX = '-tbot';
export const TBOT_OUTPUT_SUFFIX = '-tbot-out';
export const TBOT_CONTAINER = 'tbot';
export const TBOT_APP_NAME = 'tbot';
export const COMPONENT_TBOT = 'tbot';
export const DEFAULT_TBOT_JOIN_METHOD = 'kubernetes';
/**
 * IdentityValid turns False this long before the identity expires: tbot renews every 20 minutes for
 * 1-hour certificates, so an identity this close to its end has missed at least two renewals.
 */
export const IDENTITY_RENEWAL_MARGIN_MS = 15 * 60_000;

export const DEFAULT_LEASE_NAME = 'teleport-mattermost-operator';
export const LEASE_DURATION_S = 15;
export const LEASE_RENEW_MS = 5_000;
