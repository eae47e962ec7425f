// The buckets file (docs/configuration.md#buckets-file): validated once, at the edge, against config/buckets.schema.json,
// then checked for what a schema cannot say (references between streams and buckets,
// templates that would escape their folder, setting values). The result is typed and frozen;
// nothing deeper in the runtime checks configuration again.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { Ajv, type ErrorObject } from 'ajv'
import { type ConfigProblem, ConfigError } from '../errors.ts'
import { PACKAGE_ROOT } from '../package-root.ts'
import { checkFileNameTemplate } from '../streams/file-name-template.ts'
import { readConfigText } from './config-file.ts'
import { overlappingFileName } from './file-name-overlap.ts'
import { parseInteger, parseSize } from './sizes.ts'
import { LIBRDKAFKA_PROPERTIES } from './librdkafka-properties.ts'
import { compilePayloadSchema, type PayloadSchema } from './payload-schema.ts'
import { securitySettings, type SaslSettings, type SslSettings } from './kafka-security.ts'

const SCHEMA_FILE = path.join(PACKAGE_ROOT, 'config', 'buckets.schema.json')

export type Compression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd'

export interface FileSettings {
  readonly path: string
  readonly maxFiles: number
  readonly sizeRotate: number
  readonly fileNameTemplate: string
  readonly fsync: boolean
  /** Files of this stream open at once, at most (one per bucket being written). */
  readonly maxOpenFiles: number
}

export interface KafkaSettings {
  readonly brokers: readonly string[]
  readonly acks: -1 | 0 | 1
  readonly compression: Compression
  readonly batchNumMessages: number
  readonly queueMaxMessages: number
  readonly lingerMs: number
  readonly messageMaxBytes: number
  readonly maxInFlight: number
  readonly requestTimeoutMs: number
  /**
   * message.timeout.ms (docs/kafka.md): how long a message may wait for Kafka to take it while
   * the cluster answers (leader changes, too few in-sync replicas) before it goes to the backup.
   */
  readonly messageTimeoutMs: number
  /** topic.metadata.refresh.interval.ms: partitions added to a topic are used after this. */
  readonly metadataRefreshIntervalMs: number
  readonly clientId: string
  /**
   * security.protocol ssl/sasl_ssl: the ssl.* files' contents, read and checked while the
   * buckets file is parsed (kafka-security.ts), so the stream never touches a file.
   */
  readonly ssl: SslSettings | null
  /** security.protocol sasl_plaintext/sasl_ssl. */
  readonly sasl: SaslSettings | null
  readonly probeIntervalMs: number
  readonly replayBytesPerSec: number
  /** kahets.client: the Kafka client library behind the stream. */
  readonly client: KafkaClient
}

export type KafkaClient = 'kafkajs' | 'platformatic'

/** How a stream's slice picks messages (docs/configuration.md#slices-by-key). */
export type SliceBy = 'random' | 'key'

interface StreamBase {
  readonly id: string
  readonly slice: number
  readonly sliceBy: SliceBy
  readonly backup: StreamConfig | null
}
export type StreamConfig =
  | (StreamBase & { readonly type: 'file', readonly settings: FileSettings })
  | (StreamBase & { readonly type: 'kafka', readonly settings: KafkaSettings })

export interface BucketConfig {
  readonly id: string
  readonly streams: readonly string[]
  readonly batch: number
  readonly batchTimeout: number
  /** Payloads must be JSON that validates against it (payload-schema.ts); null: anything goes. */
  readonly schema: PayloadSchema | null
  /** Stream id that receives the payloads the schema rejects; null: they are dropped. */
  readonly deadLetter: string | null
}

export interface BucketsConfig {
  readonly streams: ReadonlyMap<string, StreamConfig>
  readonly buckets: ReadonlyMap<string, BucketConfig>
  readonly defaultBucket: BucketConfig | null
  /** Things that are not errors but must not pass silently (unused librdkafka settings). */
  readonly warnings: readonly string[]
}

export const BUCKET_DEFAULTS = { batch: 1000, batchTimeout: 1000 }
/**
 * Upper bounds (issue 10): a batch of a million messages or a window of an hour is already
 * far past any use; above that (1e308) a value can only be a mistake.
 */
export const BUCKET_LIMITS = { batch: 1_000_000, batchTimeout: 3_600_000 }
export const FILE_DEFAULTS = { maxOpenFiles: 256, maxFiles: 0, sizeRotate: 100 * 1024 * 1024, fileNameTemplate: '{bucket}{PS}{ts}-{rand}.frames' }
export const KAFKA_DEFAULTS = {
  acks: -1 as const,
  compression: 'none' as const,
  batchNumMessages: 10000,
  queueMaxMessages: 100000,
  lingerMs: 5,
  messageMaxBytes: 1000000,
  maxInFlight: 5,
  requestTimeoutMs: 5000,
  // librdkafka's 300 s would hold a sidecar's memory for five minutes; 30 s outlasts a leader
  // election after a broker dies (broker.session.timeout.ms, 9 s by default) several times over.
  messageTimeoutMs: 30000,
  // librdkafka's default.
  metadataRefreshIntervalMs: 300000,
  clientId: 'kahets',
  probeIntervalMs: 10000,
  replayBytesPerSec: 32 * 1024 * 1024,
  // Measured ~1.65x kafkajs's msgs/s for ~40% less CPU per message (issue 5); kafkajs stays
  // selectable with kahets.client: kafkajs.
  client: 'platformatic' as const,
}

// Settings kahets reads; any other name librdkafka knows is warned about, any other name
// at all is an error.
const KAFKA_USED = new Set([
  'bootstrap.servers', 'metadata.broker.list', 'acks', 'request.required.acks', 'compression.codec',
  'compression.type', 'batch.num.messages', 'queue.buffering.max.messages', 'queue.buffering.max.ms',
  'linger.ms', 'message.max.bytes', 'max.in.flight.requests.per.connection', 'max.in.flight',
  'request.timeout.ms', 'message.timeout.ms', 'delivery.timeout.ms', 'topic.metadata.refresh.interval.ms',
  'metadata.max.age.ms', 'client.id', 'security.protocol', 'sasl.mechanisms', 'sasl.mechanism',
  'sasl.username', 'sasl.password', 'ssl.ca.location', 'ssl.certificate.location', 'ssl.key.location',
  'ssl.key.password', 'ssl.endpoint.identification.algorithm', 'kahets.probe.interval.ms',
  'kahets.replay.max.bytes.per.sec', 'kahets.client',
])

let validateSchema: ReturnType<Ajv['compile']> | null = null
function schemaValidator (): ReturnType<Ajv['compile']> {
  if (validateSchema === null) {
    // verbose: errors carry the schema (its description) and the value (see describe).
    const ajv = new Ajv({ allErrors: true, strict: false, verbose: true })
    validateSchema = ajv.compile(JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')))
  }
  return validateSchema
}

/** "$.buckets[0].batch" from ajv's "/buckets/0/batch". */
export function jsonPath (pointer: string): string {
  if (pointer === '') return '$'
  return '$' + pointer.split('/').slice(1).map((seg) => {
    const s = seg.replace(/~1/g, '/').replace(/~0/g, '~')
    return /^\d+$/.test(s) ? `[${s}]` : /^[A-Za-z_$][\w$]*$/.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`
  }).join('')
}

// ajv's messages name keywords and regular expressions ('must match pattern "^\\s*\\d+…"');
// an operator needs to read what the value should be. The schema's descriptions say it in
// words: a pattern's own description (its branch of a oneOf), else the description of the
// oneOf or of the property.
function described (e: ErrorObject): string | null {
  const d = (e.parentSchema as { description?: unknown } | undefined)?.description
  return typeof d === 'string' ? d : null
}

function got (e: ErrorObject): string {
  const text = JSON.stringify(e.data)
  return text !== undefined && text.length <= 60 ? `, not ${text}` : ''
}

function describe (e: ErrorObject): string {
  switch (e.keyword) {
    case 'required': return `missing required property "${String(e.params.missingProperty)}"`
    case 'additionalProperties': return `unknown property "${String(e.params.additionalProperty)}"`
    case 'enum': return `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`
    case 'const': return `must be ${JSON.stringify(e.params.allowedValue)}`
    case 'maximum': return `must be at most ${String(e.params.limit)}`
    case 'minimum': return `must be at least ${String(e.params.limit)}`
    case 'type': return `must be ${String(e.params.type).split(',').map((t) => t === 'integer' ? 'a whole number' : /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`).join(' or ')}`
    case 'minLength': return e.params.limit === 1 ? 'must not be empty' : `must be at least ${String(e.params.limit)} characters long`
    case 'maxLength': return `must be at most ${String(e.params.limit)} characters long`
    case 'minItems': return e.params.limit === 1 ? 'must not be empty' : `must have at least ${String(e.params.limit)} entries`
    case 'pattern':
    case 'not':
    case 'oneOf': {
      const d = described(e)
      return d === null ? `is not a valid value${got(e)}` : `must be ${d}${got(e)}`
    }
    case 'propertyNames': return `has a name that is not allowed: ${JSON.stringify(e.params.propertyName)}`
    default: return e.message ?? e.keyword
  }
}

function schemaProblems (errors: ErrorObject[]): ConfigProblem[] {
  // An if/then failure repeats what its branch said.
  const useful = errors.filter((e) => e.keyword !== 'if')
  const byPath = new Map<string, ErrorObject[]>()
  for (const e of useful) {
    const at = jsonPath(e.instancePath)
    byPath.set(at, [...(byPath.get(at) ?? []), e])
  }
  // One complaint per path, the most telling: a bound ("must be at most 1000000") over the
  // other branch's type; what a string should look like over "must be a whole number"; the
  // oneOf's own description when no branch came close; a bad property name alone.
  const pick = (errs: ErrorObject[]): ErrorObject[] => {
    const of = (...keywords: string[]): ErrorObject[] => errs.filter((e) => keywords.includes(e.keyword))
    for (const preferred of [of('propertyNames'), of('maximum', 'minimum'), of('pattern', 'not')]) if (preferred.length > 0) return preferred
    const oneOf = of('oneOf')
    if (oneOf.length > 0 && described(oneOf[0]!) !== null) return oneOf
    return errs.filter((e) => e.keyword !== 'oneOf')
  }
  return [...byPath].map(([path, errs]) => ({ path, message: [...new Set(pick(errs).map(describe))].join('; ') }))
}

type Json = Record<string, unknown>

function str (v: unknown): string {
  return typeof v === 'string' ? v : String(v)
}

function fileSettings (raw: Json, at: string, problems: ConfigProblem[]): FileSettings {
  const path = str(raw.path)
  const maxFiles = raw.maxFiles === undefined ? FILE_DEFAULTS.maxFiles : parseInteger(raw.maxFiles as string, 0)
  const sizeRotate = raw.sizeRotate === undefined ? FILE_DEFAULTS.sizeRotate : parseSize(raw.sizeRotate as string)
  const fileNameTemplate = raw.fileNameTemplate === undefined ? FILE_DEFAULTS.fileNameTemplate : str(raw.fileNameTemplate)
  const maxOpenFiles = raw.maxOpenFiles === undefined ? FILE_DEFAULTS.maxOpenFiles : parseInteger(raw.maxOpenFiles as string, 1)
  if (maxOpenFiles === null) problems.push({ path: `${at}.maxOpenFiles`, message: `not a whole number ≥ 1: ${JSON.stringify(raw.maxOpenFiles)}` })
  if (maxFiles === null) problems.push({ path: `${at}.maxFiles`, message: `not a whole number ≥ 0: ${JSON.stringify(raw.maxFiles)}` })
  if (sizeRotate === null || sizeRotate < 1) problems.push({ path: `${at}.sizeRotate`, message: `not a size: ${JSON.stringify(raw.sizeRotate)}` })
  const templateProblem = checkFileNameTemplate(path, fileNameTemplate)
  if (templateProblem !== null) problems.push({ path: `${at}.fileNameTemplate`, message: templateProblem })
  // The schema allows only true, false, "true" and "false" (a typo must not turn fsync off).
  const fsync = raw.fsync === undefined ? true : raw.fsync === true || raw.fsync === 'true'
  return { path, maxFiles: maxFiles ?? 0, sizeRotate: sizeRotate ?? 1, fileNameTemplate, fsync, maxOpenFiles: maxOpenFiles ?? FILE_DEFAULTS.maxOpenFiles }
}

function kafkaSettings (raw: Json, at: string, problems: ConfigProblem[], warnings: string[]): KafkaSettings {
  const unused: string[] = []
  for (const key of Object.keys(raw)) {
    if (KAFKA_USED.has(key)) continue
    if (LIBRDKAFKA_PROPERTIES.has(key)) unused.push(key)
    else problems.push({ path: `${at}[${JSON.stringify(key)}]`, message: `unknown Kafka setting "${key}" (neither kahets nor librdkafka knows it)` })
  }
  if (unused.length > 0) warnings.push(`${at}: librdkafka settings kahets does not use, ignored: ${unused.join(', ')}`)

  const pick = (...names: string[]): unknown => names.map((n) => raw[n]).find((v) => v !== undefined)
  const int = (names: string[], min: number, fallback: number, max = Infinity): number => {
    const v = pick(...names)
    if (v === undefined) return fallback
    const n = parseInteger(v as string, min)
    const name = names.find((x) => raw[x] !== undefined) ?? names[0]
    if (n === null || n > max) {
      problems.push({ path: `${at}["${name}"]`, message: max === Infinity ? `not a whole number ≥ ${min}: ${JSON.stringify(v)}` : `not a whole number ${min}..${max}: ${JSON.stringify(v)}` })
      return fallback
    }
    return n
  }
  const brokers = str(pick('bootstrap.servers', 'metadata.broker.list')).split(',').map((s) => s.trim()).filter((s) => s !== '')
  for (const b of brokers) {
    if (!/^[^\s:]+:\d{1,5}$/.test(b.replace(/^[a-z]+:\/\//i, ''))) problems.push({ path: `${at}["bootstrap.servers"]`, message: `not host:port: "${b}"` })
  }
  const acksRaw = str(pick('acks', 'request.required.acks') ?? 'all')
  const acks = acksRaw === 'all' || acksRaw === '-1' ? -1 : acksRaw === '0' ? 0 : 1
  const compression = str(pick('compression.codec', 'compression.type') ?? 'none') as Compression
  const lingerRaw = pick('queue.buffering.max.ms', 'linger.ms')
  const lingerMs = lingerRaw === undefined ? KAFKA_DEFAULTS.lingerMs : Number(lingerRaw)
  if (!Number.isFinite(lingerMs) || lingerMs < 0) problems.push({ path: `${at}["queue.buffering.max.ms"]`, message: `not a number of ms ≥ 0: ${JSON.stringify(lingerRaw)}` })

  const { ssl, sasl } = securitySettings(raw, at, problems, warnings)
  const replay = pick('kahets.replay.max.bytes.per.sec')
  const replayBytesPerSec = replay === undefined ? KAFKA_DEFAULTS.replayBytesPerSec : parseSize(replay as string) ?? KAFKA_DEFAULTS.replayBytesPerSec

  const requestTimeoutMs = int(['request.timeout.ms'], 100, KAFKA_DEFAULTS.requestTimeoutMs)
  // 0 (librdkafka: wait forever) is refused: a sidecar must hand what Kafka cannot take to its
  // backup in bounded time. Below request.timeout.ms one slow answer would already fail over.
  const messageTimeoutMs = int(['message.timeout.ms', 'delivery.timeout.ms'], 1000, KAFKA_DEFAULTS.messageTimeoutMs, 3_600_000)
  if (messageTimeoutMs < requestTimeoutMs && pick('message.timeout.ms', 'delivery.timeout.ms') !== undefined) {
    problems.push({ path: `${at}["message.timeout.ms"]`, message: `${messageTimeoutMs} is less than request.timeout.ms (${requestTimeoutMs}): a message must outlive one request` })
  }

  const clientRaw = str(pick('kahets.client') ?? KAFKA_DEFAULTS.client)
  if (clientRaw !== 'kafkajs' && clientRaw !== 'platformatic') problems.push({ path: `${at}["kahets.client"]`, message: `not kafkajs or platformatic: ${JSON.stringify(clientRaw)}` })
  const client: KafkaClient = clientRaw === 'platformatic' ? 'platformatic' : 'kafkajs'

  return {
    brokers,
    acks,
    compression,
    batchNumMessages: int(['batch.num.messages'], 1, KAFKA_DEFAULTS.batchNumMessages),
    queueMaxMessages: int(['queue.buffering.max.messages'], 1, KAFKA_DEFAULTS.queueMaxMessages),
    lingerMs: Number.isFinite(lingerMs) && lingerMs >= 0 ? lingerMs : KAFKA_DEFAULTS.lingerMs,
    messageMaxBytes: int(['message.max.bytes'], 1000, KAFKA_DEFAULTS.messageMaxBytes),
    maxInFlight: int(['max.in.flight.requests.per.connection', 'max.in.flight'], 1, KAFKA_DEFAULTS.maxInFlight),
    requestTimeoutMs,
    messageTimeoutMs,
    metadataRefreshIntervalMs: int(['topic.metadata.refresh.interval.ms', 'metadata.max.age.ms'], 100, KAFKA_DEFAULTS.metadataRefreshIntervalMs, 3_600_000),
    clientId: str(pick('client.id') ?? KAFKA_DEFAULTS.clientId),
    ssl,
    sasl,
    probeIntervalMs: int(['kahets.probe.interval.ms'], 100, KAFKA_DEFAULTS.probeIntervalMs),
    replayBytesPerSec,
    client,
  }
}

function slice (v: unknown): number {
  return v === undefined ? 1 : Number(v)
}

function stream (id: string, raw: Json, at: string, problems: ConfigProblem[], warnings: string[], isBackup: boolean): StreamConfig {
  const settingsRaw = (raw.settings ?? {}) as Json
  const backup = raw.backup === undefined ? null : stream(`${id}.backup`, raw.backup as Json, `${at}.backup`, problems, warnings, true)
  // A backup takes everything it is given, whatever its primary's slice.
  const base = { id, slice: isBackup ? 1 : slice(raw.slice), sliceBy: (isBackup ? 'random' : raw.sliceBy ?? 'random') as SliceBy, backup }
  if (raw.type === 'file') return { ...base, type: 'file', settings: fileSettings(settingsRaw, `${at}.settings`, problems) }
  return { ...base, type: 'kafka', settings: kafkaSettings(settingsRaw, `${at}.settings`, problems, warnings) }
}

function bucket (raw: Json, id: string, at: string, baseDir: string, problems: ConfigProblem[], warnings: string[]): BucketConfig {
  // The schema bounds numbers; a string ("5000", as kahego writes them) is bounded here.
  const bounded = (key: keyof typeof BUCKET_LIMITS): number => {
    if (raw[key] === undefined) return BUCKET_DEFAULTS[key]
    const n = Number(raw[key])
    if (n > BUCKET_LIMITS[key]) problems.push({ path: `${at}.${key}`, message: `must be at most ${BUCKET_LIMITS[key]}` })
    return n
  }
  // Relative to the buckets file's folder, so the file and its schemas move together.
  const schema = raw.schema === undefined ? null : compilePayloadSchema(path.resolve(baseDir, str(raw.schema)), `${at}.schema`, problems)
  const deadLetter = raw.deadLetter === undefined ? null : str(raw.deadLetter)
  if (deadLetter !== null && raw.schema === undefined) warnings.push(`${at}.deadLetter: the bucket has no schema, so nothing is ever sent to "${deadLetter}"`)
  return { id, streams: (raw.streams as string[]).slice(), batch: bounded('batch'), batchTimeout: bounded('batchTimeout'), schema, deadLetter }
}

function deepFreeze<T> (o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o)
    if (o instanceof Map) for (const v of o.values()) deepFreeze(v)
    else for (const v of Object.values(o)) deepFreeze(v)
  }
  return o
}

/**
 * Two file streams (a backup counts as one) whose templates could produce the same file
 * under the same folder, or one inside the other, would count, prune and replay each
 * other's files: an error at the later one's path (see file-name-overlap.ts for the rule).
 */
function checkSharedFolders (streams: ReadonlyMap<string, StreamConfig>, problems: ConfigProblem[]): void {
  const files: Array<{ at: string, settings: FileSettings }> = []
  for (const [id, top] of streams) {
    let at = `$.streamsConfigs${jsonPath('/' + id).slice(1)}`
    for (let c: StreamConfig | null = top; c !== null; c = c.backup, at += '.backup') {
      // A template already refused is reported on its own.
      if (c.type === 'file' && checkFileNameTemplate(c.settings.path, c.settings.fileNameTemplate) === null) files.push({ at, settings: c.settings })
    }
  }
  files.forEach((b, i) => {
    for (const a of files.slice(0, i)) {
      const name = overlappingFileName(a.settings, b.settings)
      if (name === null) continue
      problems.push({
        path: `${b.at}.settings.path`,
        message: `shares files with ${a.at}: both could write ${name}, ` +
          'so each would count, delete (maxFiles) and replay the other\'s files; give each stream its own path, or templates that cannot produce each other\'s names (another fixed prefix or extension)',
      })
      return
    }
  })
}

const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v)

/**
 * Validates parsed JSON. Throws ConfigError listing every problem with its JSON path, in one
 * pass: the schema's complaints and the cross-checks (references between buckets and streams,
 * shared folders, templates, CA files, payload schemas). A stream or bucket whose shape the
 * schema refused is not checked further (its checks would read what is not there), but its
 * id still counts for references and the rest of the file is checked as usual.
 * `baseDir`: the buckets file's folder, which `schema` paths are relative to.
 */
export function parseBucketsConfig (doc: unknown, baseDir: string = process.cwd()): BucketsConfig {
  const validate = schemaValidator()
  const problems: ConfigProblem[] = validate(doc) ? [] : schemaProblems(validate.errors ?? [])
  const refused = problems.map((p) => p.path)
  // No schema complaint at `at` or below it.
  const sound = (at: string): boolean => !refused.some((p) => p === at || p.startsWith(`${at}.`) || p.startsWith(`${at}[`))
  const root: Json = isObject(doc) ? doc : {}
  const warnings: string[] = []

  const streamIds = new Set<string>()
  const streams = new Map<string, StreamConfig>()
  if (isObject(root.streamsConfigs)) {
    for (const [id, raw] of Object.entries(root.streamsConfigs)) {
      streamIds.add(id)
      const at = `$.streamsConfigs${jsonPath('/' + id).slice(1)}`
      if (isObject(raw) && sound(at)) streams.set(id, stream(id, raw, at, problems, warnings, false))
    }
  }
  checkSharedFolders(streams, problems)
  const checkRefs = (b: Json, at: string): void => {
    if (Array.isArray(b.streams)) {
      b.streams.forEach((s: unknown, i) => {
        if (typeof s === 'string' && !streamIds.has(s)) problems.push({ path: `${at}.streams[${i}]`, message: `stream "${s}" is not defined in streamsConfigs` })
      })
    }
    if (typeof b.deadLetter !== 'string') return
    const dl = b.deadLetter
    if (!streamIds.has(dl)) problems.push({ path: `${at}.deadLetter`, message: `stream "${dl}" is not defined in streamsConfigs` })
    // Its flow (bucket, stream) counts the rejected messages only (docs/configuration.md#payload-schemas).
    else if (Array.isArray(b.streams) && b.streams.includes(dl)) problems.push({ path: `${at}.deadLetter`, message: `stream "${dl}" is one of the bucket's streams; the dead-letter stream must be another` })
  }
  const buckets = new Map<string, BucketConfig>()
  if (Array.isArray(root.buckets)) {
    root.buckets.forEach((b: unknown, i) => {
      const at = `$.buckets[${i}]`
      if (!isObject(b)) return
      checkRefs(b, at)
      if (typeof b.id !== 'string') return
      const id = b.id
      if (buckets.has(id)) problems.push({ path: `${at}.id`, message: `bucket "${id}" is defined twice` })
      if (sound(at)) buckets.set(id, bucket(b, id, at, baseDir, problems, warnings))
    })
  }
  let defaultBucket: BucketConfig | null = null
  if (isObject(root.defaultBucket)) {
    const d = root.defaultBucket
    checkRefs(d, '$.defaultBucket')
    if (sound('$.defaultBucket')) defaultBucket = bucket(d, str(d.id ?? 'default'), '$.defaultBucket', baseDir, problems, warnings)
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return deepFreeze({ streams, buckets, defaultBucket, warnings })
}

/** Every bucket of the file, the defaultBucket last (named `defaultBucket`). */
export function bucketList (config: BucketsConfig): BucketConfig[] {
  return [...config.buckets.values(), ...(config.defaultBucket === null ? [] : [{ ...config.defaultBucket, id: 'defaultBucket' }])]
}

/** Reads and validates a buckets file; unreadable or non-JSON files are config errors too. */
export function loadBucketsFile (file: string): BucketsConfig {
  let text: string
  try {
    text = readConfigText(file)
  } catch (err) {
    throw new ConfigError([{ path: file, message: `cannot read buckets file: ${(err as Error).message}` }])
  }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    throw new ConfigError([{ path: file, message: `not valid JSON: ${(err as Error).message}` }])
  }
  return parseBucketsConfig(doc, path.dirname(path.resolve(file)))
}
