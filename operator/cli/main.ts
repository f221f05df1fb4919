#!/usr/bin/env node
// teleport-mattermost: the watcher (`start`), the Kubernetes operator (`operator`), and helpers.
// Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import v8 from 'node:v8';
import { DEFAULT_CONFIG_PATH } from '../config/defaults.js';
import { EXAMPLE_CONFIG } from '../config/example.js';
import { ConfigError, loadConfigFile } from '../config/load.js';
import type { PluginConfig, Severity } from '../config/types.js';
import {
  bootstrapLogger,
  createLogger,
  logOutputProblem,
  registerSecret,
  type Logger,
} from '../observability/logger.js';
import { versionLine } from '../version.js';

export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;
const SHUTDOWN_TIMEOUT_MS = 15_000;

class UsageError extends Error {}

/**
 * V8's --optimize-for-size (which NODE_OPTIONS does not accept) for the long-running roles, set before
 * they are loaded: V8 then grows the heap less eagerly and collects sooner. Measured with the watcher
 * posting 1,000 requests (bench P3): RSS 175 -> 116 MiB, V8 heap 87 -> 29 MiB, same throughput.
 * TPM_OPTIMIZE_FOR_SIZE=false turns it off.
 */
function preferSmallHeap(): void {
  if (process.env.TPM_OPTIMIZE_FOR_SIZE === 'false') return;
  v8.setFlagsFromString('--optimize-for-size');
}

/**
 * V8's optimizing compilers (Maglev, TurboFan) are off when a role starts: the image's ENTRYPOINT runs
 * `node --no-opt --no-maglev` (NODE_OPTIONS does not accept them), and this sets the same for other launches.
 * Start-up code (module loading, path handling, config parsing, the first encodes) otherwise got ~30
 * functions compiled by Maglev, which paged ~2 MiB of the node binary's compiler code into the RSS for the
 * life of the process, idle or not. The interpreter and the baseline compiler remain.
 *
 * The operator, which mostly waits on the API server, stays without them. Measured over fresh processes:
 * idle with one resource 65–71 MiB with them and 65 MiB without (bench P4i); reconciling 500 resources a
 * peak of 88 MiB with and 78 MiB without, in the same time (P4). The watcher turns them on once it is ready
 * (optimizeOnceReady), so what runs per post is optimized under load. TPM_OPTIMIZE_FOR_SIZE=false keeps
 * them on throughout, in both roles.
 */
function skipOptimizingCompilers(): void {
  if (process.env.TPM_OPTIMIZE_FOR_SIZE === 'false') return useOptimizingCompilers();
  v8.setFlagsFromString('--no-opt');
  v8.setFlagsFromString('--no-maglev');
}

function useOptimizingCompilers(): void {
  v8.setFlagsFromString('--opt');
  v8.setFlagsFromString('--maglev');
}

/**
 * The watcher's compilers come on when it first reports ready. Measured (bench, image settings): idle RSS
 * 67.7 -> 65.5 MiB, all of it the binary's compiler code no longer paged in; 20,000 posts without a rate
 * limit (P3) in 45 s, against 50 s with the compilers on from the start and 88 s with them never on.
 */
function optimizeOnceReady(ready: () => string | undefined): void {
  if (process.env.TPM_OPTIMIZE_FOR_SIZE === 'false') return useOptimizingCompilers();
  const poll = setInterval(() => {
    if (ready() !== undefined) return;
    clearInterval(poll);
    useOptimizingCompilers();
  }, 250);
  poll.unref();
}

const HELP: Record<string, string> = {
  main: `Usage: teleport-mattermost <command> [flags]

Relays Teleport access requests to Mattermost.

Commands:
  start       Starts the plugin (the watcher).
  configure   Prints an example TOML configuration file.
  operator    Runs the Kubernetes operator for MattermostAccessPlugin resources.
  version     Prints the version and exits.
  help        Shows this help.

Run 'teleport-mattermost <command> --help' for a command's flags.
`,
  start: `Usage: teleport-mattermost start [-c PATH] [-d]

Starts the plugin: watches Teleport access requests and posts them to Mattermost.

Flags:
  -c, --config PATH   TOML config file (default ${DEFAULT_CONFIG_PATH})
  -d, --debug         Enable verbose (DEBUG) logging, whatever [log] severity says
  -h, --help          Show this help

Signals: SIGTERM/SIGINT stop gracefully (finishing in-flight posts); SIGHUP reloads recipients, log level
and the Mattermost token (a change of a token file is picked up by itself).
`,
  configure: `Usage: teleport-mattermost configure

Prints a complete, commented example configuration:  teleport-mattermost configure > /etc/teleport-mattermost.toml
`,
  version: `Usage: teleport-mattermost version

Prints: teleport-mattermost v<version> git:<sha> node<version>
`,
  operator: `Usage: teleport-mattermost operator [flags]

Runs the controller that turns MattermostAccessPlugin resources into watcher Deployments.

Flags:
  --namespace NS        Watch only this namespace (default: POD_NAMESPACE, else all namespaces)
  --all-namespaces      Watch every namespace (needs the cluster-wide RBAC)
  --metrics-addr ADDR   /healthz, /readyz and /metrics listener (default :8080)
  --leader-elect BOOL   Use a Lease so only one replica writes (default true)
  --watcher-image IMG   Default image for watcher Deployments (default: this operator's version)
  --log-severity LEVEL  DEBUG, INFO, WARN or ERROR (default INFO)
  --log-format FORMAT   text or json (default text)
  -h, --help            Show this help
`,
};

type FlagValues = Record<string, string | boolean | undefined>;

function parse(args: string[], options: ParseArgsConfig['options']): { values: FlagValues } {
  try {
    const parsed = parseArgs({
      args,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
    });
    return { values: parsed.values as FlagValues };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function printConfigWarnings(logger: Logger, warnings: string[], source: string): void {
  for (const w of warnings) logger.warn(w, { config: source });
}

async function start(args: string[]): Promise<number> {
  const { values } = parse(args, {
    config: { type: 'string', short: 'c', default: DEFAULT_CONFIG_PATH },
    debug: { type: 'boolean', short: 'd', default: false },
  });
  if (values.help) {
    process.stdout.write(HELP.start as string);
    return EXIT_OK;
  }
  const configPath = values.config as string;
  const debug = values.debug === true;
  const load = (): PluginConfig => {
    const { config, warnings } = loadConfigFile(configPath);
    if (debug) config.log.severity = 'debug';
    registerSecret(config.mattermost.token);
    printConfigWarnings(logger, warnings, config.source);
    return config;
  };

  let logger: Logger = bootstrapLogger(debug ? 'debug' : 'info');
  let config: PluginConfig;
  try {
    const loaded = loadConfigFile(configPath);
    config = loaded.config;
    if (debug) config.log.severity = 'debug';
    registerSecret(config.mattermost.token);
    const outputProblem = logOutputProblem(config.log.output);
    if (outputProblem) throw new ConfigError(config.source, [outputProblem], loaded.warnings);
    logger = createLogger(config.log);
    printConfigWarnings(logger, loaded.warnings, config.source);
  } catch (err) {
    if (err instanceof ConfigError) {
      printConfigWarnings(logger, err.warnings, err.source);
      process.stderr.write(`teleport-mattermost: ${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
  if (debug) logger.debug('DEBUG logging enabled');
  logger.info('Starting Teleport Access Mattermost Plugin', {
    version: versionLine(),
    config: config.source,
  });

  preferSmallHeap();
  skipOptimizingCompilers();
  const { runWatcher } = await import('../relay/run.js');
  let handle: Awaited<ReturnType<typeof runWatcher>>;
  try {
    handle = await runWatcher(config, logger);
  } catch (err) {
    // An unusable identity is a configuration problem, like a bad token: exit 2 (see the header).
    const { IdentityError } = await import('../teleport/identity.js');
    if (!(err instanceof IdentityError)) throw err;
    logger.error('Cannot use the Teleport credentials', { error: err.message });
    process.stderr.write(`teleport-mattermost: ${err.message}\n`);
    return EXIT_USAGE;
  }

  optimizeOnceReady(() => handle.ready());
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn(`Received ${signal} again, exiting without waiting for in-flight work`);
      process.exit(EXIT_RUNTIME);
    }
    stopping = true;
    logger.info(`Received ${signal}, shutting down gracefully`);
    void handle.stop(SHUTDOWN_TIMEOUT_MS);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    try {
      const next = load();
      logger.level = next.log.severity;
      void handle.reload(next).then(
        () => logger.info('Configuration reloaded', { config: next.source }),
        (err: unknown) =>
          logger.error('Configuration reload failed; keeping the previous one', { error: err }),
      );
    } catch (err) {
      logger.error('Configuration reload failed; keeping the previous one', {
        error: err instanceof Error ? err.message : String(err),
      });
    }
  });

  try {
    await handle.done;
  } catch (err) {
    logger.error('Terminating with fatal error', { error: err instanceof Error ? err.message : String(err) });
    return EXIT_RUNTIME;
  }
  logger.info('Successfully shut down');
  return EXIT_OK;
}

function parseBool(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (/^(true|1|yes)$/i.test(value)) return true;
  if (/^(false|0|no)$/i.test(value)) return false;
  throw new UsageError(`--${name} must be true or false, got '${value}'`);
}

async function operator(args: string[]): Promise<number> {
  const { values } = parse(args, {
    namespace: { type: 'string' },
    'all-namespaces': { type: 'boolean', default: false },
    'metrics-addr': { type: 'string', default: ':8080' },
    'leader-elect': { type: 'string' },
    'watcher-image': { type: 'string' },
    'log-severity': { type: 'string', default: 'INFO' },
    'log-format': { type: 'string', default: 'text' },
  });
  if (values.help) {
    process.stdout.write(HELP.operator as string);
    return EXIT_OK;
  }
  const severity = String(values['log-severity']).toLowerCase();
  if (!['debug', 'info', 'warn', 'error'].includes(severity)) {
    throw new UsageError(
      `--log-severity must be DEBUG, INFO, WARN or ERROR, got '${values['log-severity']}'`,
    );
  }
  const format = String(values['log-format']).toLowerCase();
  if (format !== 'text' && format !== 'json') {
    throw new UsageError(`--log-format must be text or json, got '${values['log-format']}'`);
  }
  if (values.namespace && values['all-namespaces']) {
    throw new UsageError('--namespace and --all-namespaces exclude each other');
  }
  const logger = createLogger({ severity: severity as Severity, format, output: 'stderr' });
  const namespace = values['all-namespaces']
    ? undefined
    : ((values.namespace as string | undefined) ?? process.env.POD_NAMESPACE ?? undefined);
  preferSmallHeap();
  skipOptimizingCompilers();
  const { runOperator } = await import('../controller/run.js');
  const { DEFAULT_WATCHER_IMAGE } = await import('../controller/defaults.js');
  logger.info('Starting teleport-mattermost operator', {
    version: versionLine(),
    namespace: namespace ?? '(all)',
  });
  const leaderElect = parseBool('leader-elect', values['leader-elect'] as string | undefined, true);
  let handle: Awaited<ReturnType<typeof runOperator>>;
  try {
    handle = await runOperator(
      {
        ...(namespace ? { namespace } : {}),
        metricsAddr: String(values['metrics-addr']),
        leaderElect,
        watcherImage: (values['watcher-image'] as string | undefined) ?? DEFAULT_WATCHER_IMAGE,
      },
      logger,
    );
  } catch (err) {
    // No cluster to talk to: a configuration error, not something a restart or a retry fixes.
    if (!(err instanceof Error) || err.name !== 'KubeConfigError') throw err;
    process.stderr.write(`teleport-mattermost: ${err.message}\n`);
    return EXIT_USAGE;
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info(`Received ${signal}, stopping the operator`);
      void handle.stop().then(resolve, resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return EXIT_OK;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'start':
        return await start(rest);
      case 'operator':
        return await operator(rest);
      case 'configure':
        if (rest.includes('--help') || rest.includes('-h')) process.stdout.write(HELP.configure as string);
        else if (rest.length > 0)
          throw new UsageError(`configure takes no arguments, got '${rest.join(' ')}'`);
        else process.stdout.write(EXAMPLE_CONFIG);
        return EXIT_OK;
      case 'version':
        if (rest.includes('--help') || rest.includes('-h')) process.stdout.write(HELP.version as string);
        else process.stdout.write(`${versionLine()}\n`);
        return EXIT_OK;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(HELP.main as string);
        return command === undefined ? EXIT_USAGE : EXIT_OK;
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(
        `teleport-mattermost: ${err.message}\nRun 'teleport-mattermost --help' for usage.\n`,
      );
      return EXIT_USAGE;
    }
    process.stderr.write(`teleport-mattermost: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_RUNTIME;
  }
}

// Run when executed directly (not when imported by tests).
if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/teleport-mattermost')) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`teleport-mattermost: ${String(err)}\n`);
      process.exit(EXIT_RUNTIME);
    },
  );
}
