// Environment configuration (docs/configuration.md#environment): `.env.{environment}.local` read with dotenv, the
// process environment winning over the file. Every bad value is reported at once, naming the
// variable and the value; nothing starts half-configured.
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import dotenv from 'dotenv'
import { type ConfigProblem, ConfigError } from '../errors.ts'
import { readConfigFile } from './config-file.ts'
import { parseInteger, parseSize, SIZE_UNITS } from './sizes.ts'

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'

export type MetricsAddress = { readonly host: string, readonly port: number } | { readonly path: string }

export interface EnvConfig {
  readonly environment: string
  /** The env file read, or null when none was found (defaults and process env only). */
  readonly envFile: string | null
  readonly bucketsFile: string
  readonly socket: string
  readonly socketMode: number
  readonly maxMemory: number
  readonly maxCpus: number
  readonly logLevel: LogLevel
  readonly maxFrameBytes: number
  readonly metrics: MetricsAddress | null
  /** How long shutdown waits for Kafka before writing what is left to the backup. */
  readonly shutdownTimeoutMs: number
  /** Only where shutdown(2) is unavailable: a client quiet this long at shutdown is taken as done. */
  readonly shutdownDrainMs: number
  /** Bucket names kahets keeps state and metrics for; frames for a new name past it are dropped. */
  readonly maxBuckets: number
}

export const ENV_DEFAULTS = {
  BUCKETS_FILE: './buckets.json',
  SOCKET: '/tmp/kahets.sock',
  SOCKET_MODE: '0660',
  MAXMEMORY: '250MB',
  MAXCPUS: '2',
  LOG_LEVEL: 'INFO',
  MAX_FRAME_BYTES: '1MB',
  SHUTDOWN_TIMEOUT: '10000',
  SHUTDOWN_DRAIN_MS: '50',
  MAX_BUCKETS: '10000',
}

// kahego's level names, plus the spellings people type.
const LEVELS: Record<string, LogLevel> = {
  trace: 'trace', debug: 'debug', info: 'info', warn: 'warn', warning: 'warn', error: 'error', fatal: 'fatal', panic: 'fatal',
}

function parseMetrics (v: string): MetricsAddress | null {
  if (v.startsWith('unix:')) return v.length > 5 ? { path: v.slice(5) } : null
  const m = /^(.*):(\d{1,5})$/.exec(v)
  if (m === null) return null
  const port = Number(m[2])
  const host = m[1] === '' ? '127.0.0.1' : m[1]!.replace(/^\[(.*)\]$/, '$1')
  return port <= 65535 ? { host, port } : null
}

/**
 * Variables the runtime reads at process start (Node.js, libuv's thread pool, OpenSSL). The
 * env file is read by kahets after that, so one set there could not take effect; it is
 * refused rather than silently ignored (issue 10, finding 10). kahets never copies the
 * file's variables into process.env.
 */
const RUNTIME_VARIABLES = /^(NODE_\w+|UV_\w+|OPENSSL_CONF|OPENSSL_MODULES|SSL_CERT_FILE|SSL_CERT_DIR)$/

function isRuntimeVariable (name: string): boolean {
  return RUNTIME_VARIABLES.test(name)
}

export interface EnvOptions {
  /** --env-file; otherwise `.env.{environment}.local` in cwd. */
  envFile?: string
  cwd?: string
  /** The process environment (tests pass their own). */
  env?: NodeJS.ProcessEnv
}

export function loadEnv (opts: EnvOptions = {}): EnvConfig {
  const cwd = opts.cwd ?? process.cwd()
  const processEnv = opts.env ?? process.env
  const environment = processEnv.environment ?? 'dev'
  const problems: ConfigProblem[] = []

  let envFile: string | null = resolve(cwd, opts.envFile ?? `.env.${environment}.local`)
  let fileVars: Record<string, string> = {}
  if (existsSync(envFile)) {
    try {
      fileVars = dotenv.parse(readConfigFile(envFile))
    } catch (err) {
      problems.push({ path: envFile, message: `cannot read: ${(err as Error).message}` })
    }
  } else if (opts.envFile !== undefined) {
    problems.push({ path: envFile, message: 'env file not found' })
  } else {
    envFile = null
  }

  for (const name of Object.keys(fileVars).filter(isRuntimeVariable)) {
    problems.push({ path: name, message: `set in ${envFile}, but Node.js reads it when the process starts, before kahets reads that file: set it in the process environment instead (systemd Environment=, the shell)` })
  }

  const get = (name: keyof typeof ENV_DEFAULTS): string => (processEnv[name] ?? fileVars[name] ?? ENV_DEFAULTS[name]).trim()
  const bad = (name: string, value: string, expected: string): void => { problems.push({ path: name, message: `invalid value ${JSON.stringify(value)}: expected ${expected}` }) }

  const socket = get('SOCKET')
  if (socket === '') bad('SOCKET', socket, 'a socket file path')
  const modeRaw = get('SOCKET_MODE')
  const socketMode = /^0?[0-7]{3,4}$/.test(modeRaw) ? parseInt(modeRaw, 8) : NaN
  if (Number.isNaN(socketMode)) bad('SOCKET_MODE', modeRaw, 'octal permission bits such as 0660')
  const maxMemory = parseSize(get('MAXMEMORY'))
  if (maxMemory === null || maxMemory < 1024) bad('MAXMEMORY', get('MAXMEMORY'), `a size of at least 1KB such as 250MB (${SIZE_UNITS})`)
  const maxCpus = parseInteger(get('MAXCPUS'), 1)
  if (maxCpus === null) bad('MAXCPUS', get('MAXCPUS'), 'a whole number ≥ 1')
  const logLevel = LEVELS[get('LOG_LEVEL').toLowerCase()]
  if (logLevel === undefined) bad('LOG_LEVEL', get('LOG_LEVEL'), 'one of TRACE DEBUG INFO WARN ERROR FATAL')
  const maxFrameBytes = parseSize(get('MAX_FRAME_BYTES'))
  if (maxFrameBytes === null || maxFrameBytes < 16 || maxFrameBytes > 0xffffffff) bad('MAX_FRAME_BYTES', get('MAX_FRAME_BYTES'), `a size between 16B and 4GB such as 1MB (${SIZE_UNITS})`)
  const shutdownTimeoutMs = parseInteger(get('SHUTDOWN_TIMEOUT'), 0)
  if (shutdownTimeoutMs === null) bad('SHUTDOWN_TIMEOUT', get('SHUTDOWN_TIMEOUT'), 'milliseconds, a whole number ≥ 0')
  const shutdownDrainMs = parseInteger(get('SHUTDOWN_DRAIN_MS'), 1)
  if (shutdownDrainMs === null) bad('SHUTDOWN_DRAIN_MS', get('SHUTDOWN_DRAIN_MS'), 'milliseconds, a whole number ≥ 1')
  const maxBuckets = parseInteger(get('MAX_BUCKETS'), 1)
  if (maxBuckets === null) bad('MAX_BUCKETS', get('MAX_BUCKETS'), 'a whole number ≥ 1')
  const metricsRaw = (processEnv.METRICS ?? fileVars.METRICS ?? '').trim()
  const metrics = metricsRaw === '' ? null : parseMetrics(metricsRaw)
  if (metricsRaw !== '' && metrics === null) bad('METRICS', metricsRaw, 'host:port or unix:/path')

  if (problems.length > 0) throw new ConfigError(problems)
  return Object.freeze({
    environment,
    envFile,
    bucketsFile: resolve(cwd, get('BUCKETS_FILE')),
    socket: resolve(cwd, socket),
    socketMode,
    maxMemory: maxMemory!,
    maxCpus: maxCpus!,
    logLevel: logLevel!,
    maxFrameBytes: maxFrameBytes!,
    metrics,
    shutdownTimeoutMs: shutdownTimeoutMs!,
    shutdownDrainMs: shutdownDrainMs!,
    maxBuckets: maxBuckets!,
  })
}
