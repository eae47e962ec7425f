// A bucket's payload schema (docs/configuration.md#payload-schemas; issue 14): a JSON Schema file named by
// `schema` in the buckets file, compiled once with ajv when the buckets file is read (and
// again on SIGHUP, which reads it again), then run on every payload of the bucket.
//
// A payload passes when it is UTF-8 JSON (RFC 8259: JSON text is UTF-8) that validates. Most
// payloads are decided by the schema's byte scanner (payload-scan.ts), which reads the bytes
// once and builds nothing; the rest (a string with an escape or non-ASCII text, a schema rule
// the scanner does not model, anything it would reject) are decoded, parsed once with
// JSON.parse and validated by ajv, which also gives a rejection its reason. Either way the
// payload's bytes are written unchanged.
import { isUtf8 } from 'node:buffer'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { Ajv2019 } from 'ajv/dist/2019.js'
import { Ajv2020 } from 'ajv/dist/2020.js'
import type { ConfigProblem } from '../errors.ts'
import { WireFrame, type Frame } from '../protocol/frame.ts'
import { readConfigText } from './config-file.ts'
import { compileByteCheck, type ByteCheck } from './payload-scan.ts'
import { schemaRegExpEngine } from './schema-pattern.ts'
import { useLinearUniqueItems } from './unique-items.ts'

/** Why a payload was rejected; also the `reason` label of kahets_schema_rejected_total. */
export type SchemaRejection = 'not_json' | 'invalid'

/** What a rejected payload's first failure was, for the log (docs/configuration.md#payload-schemas: the ajv error path). */
export interface SchemaFailure {
  readonly reason: SchemaRejection
  /** JSON Pointer into the payload (ajv's instancePath), '' for the whole document. */
  readonly path: string
  readonly message: string
}


// When the scanner cannot tell for most payloads (text that is mostly not ASCII, a flood of
// invalid ones), trying it first is wasted: after a window where it decided fewer than half,
// it is left out for the next BYPASS payloads, then tried again.
const WINDOW = 256
const BYPASS = 16_384

export class PayloadSchema {
  /** Absolute path of the schema file. */
  readonly file: string
  /** Why the schema has no byte scanner (every payload goes through JSON.parse and ajv); null: it has one. */
  readonly scanMissing: string | null
  /** Its patterns whose time has no bound (schema-pattern.ts): pattern → why. */
  readonly backtracking: ReadonlyMap<string, string>
  readonly #validate: ValidateFunction
  readonly #scan: ByteCheck | null
  #tried = 0
  #decided = 0
  #bypass = 0

  constructor (file: string, validate: ValidateFunction, document: unknown, backtracking: ReadonlyMap<string, string> = new Map()) {
    this.file = file
    this.#validate = validate
    this.backtracking = backtracking
    const scan = compileByteCheck(document)
    this.#scan = scan.check
    this.scanMissing = scan.reason
  }

  /** null when the frame's payload passes; else the first failure. */
  check (frame: Frame): SchemaFailure | null {
    if (this.#scan !== null) {
      if (this.#bypass > 0) {
        this.#bypass--
      } else {
        const valid = frame instanceof WireFrame ? frame.scanPayload(this.#scan) : this.#scan(frame.payload, 0, frame.payloadLength)
        if (valid) this.#decided++
        if (++this.#tried === WINDOW) {
          if (this.#decided < WINDOW / 2) this.#bypass = BYPASS
          this.#tried = 0
          this.#decided = 0
        }
        if (valid) return null
      }
    }
    return this.#parse(frame)
  }

  /** The payload decoded, parsed and validated by ajv: null when it passes, else the first failure. */
  #parse (frame: Frame): SchemaFailure | null {
    // Decoded straight from the socket chunk (no view); bytes that are not UTF-8 decode to
    // U+FFFD, so only a text holding one is checked strictly (bench: a view and a fatal
    // TextDecoder cost ~4% of the screening).
    const text = frame instanceof WireFrame ? frame.payloadText() : frame.payload.toString('utf8')
    if (text.includes('\uFFFD') && !isUtf8(frame.payload)) return { reason: 'not_json', path: '', message: 'not UTF-8' }
    let doc: unknown
    try {
      doc = JSON.parse(text)
    } catch (err) {
      return { reason: 'not_json', path: '', message: (err as Error).message }
    }
    try {
      if (this.#validate(doc)) return null
    } catch (err) {
      // ajv's validator recurses once per level of a recursive schema ($ref to itself): a
      // document nested deeper than the stack (JSON.parse itself has no such limit) cannot
      // be validated, and is rejected rather than failing the bucket's actor.
      if (!(err instanceof RangeError)) throw err
      return { reason: 'invalid', path: '', message: 'nested too deep to validate' }
    }
    const e: ErrorObject | undefined = this.#validate.errors?.[0]
    return { reason: 'invalid', path: e?.instancePath ?? '', message: e === undefined ? 'does not validate' : `${e.keyword}: ${e.message ?? ''}` }
  }
}

/**
 * One line per schema file of a buckets file, saying how its payloads are checked: on their
 * bytes, or (when the schema uses rules the byte scanner does not model) each parsed and run
 * through ajv, which costs several times more (docs/configuration.md#payload-schemas).
 */
export function describePayloadSchemas (buckets: Iterable<{ readonly id: string, readonly schema: PayloadSchema | null }>): string[] {
  const byFile = new Map<string, { schema: PayloadSchema, buckets: string[] }>()
  for (const b of buckets) {
    if (b.schema === null) continue
    const entry = byFile.get(b.schema.file) ?? { schema: b.schema, buckets: [] }
    entry.buckets.push(b.id)
    byFile.set(b.schema.file, entry)
  }
  return [...byFile].map(([file, { schema, buckets: ids }]) => {
    const where = `payload schema ${file} (${ids.length === 1 ? 'bucket' : 'buckets'} ${ids.join(', ')})`
    const how = schema.scanMissing === null
      ? `${where}: payloads checked on their bytes (JSON.parse and ajv only for the rest)`
      : `${where}: every payload parsed and validated by ajv, several times slower: ${schema.scanMissing} is outside what the byte scanner models`
    const slow = [...schema.backtracking].map(([pattern, why]) => `${JSON.stringify(pattern)} (${why})`)
    return slow.length === 0
      ? how
      : `${how}; ${slow.length === 1 ? 'a pattern has' : 'patterns have'} no time bound, so a crafted payload can take seconds: ${slow.join(', ')}`
  })
}

/**
 * The ajv payload schemas are compiled with: the JSON Schema dialect a schema declares picks
 * its class; without $schema, draft-07. Patterns the linear engine cannot run are added to
 * `backtracking` (schema-pattern.ts); uniqueItems is checked in linear time (unique-items.ts).
 */
export function payloadAjv (dialect: unknown, backtracking = new Map<string, string>()): Ajv {
  // Options: the first failure is enough (it is what gets logged) and stops early; `strict`
  // off so annotations other tools use (x-*, examples under other names) are not compile
  // errors; `format` is not checked (ajv knows no formats without ajv-formats).
  const opts = { allErrors: false, strict: false, validateFormats: false, logger: false as const, code: { regExp: schemaRegExpEngine(backtracking) } }
  const ajv = typeof dialect === 'string' && dialect.includes('2020-12')
    ? new Ajv2020(opts)
    : typeof dialect === 'string' && dialect.includes('2019-09') ? new Ajv2019(opts) : new Ajv(opts)
  useLinearUniqueItems(ajv)
  return ajv
}

/** Reads and compiles a schema file; a problem at `at` (with the file's path) if it cannot. */
export function compilePayloadSchema (file: string, at: string, problems: ConfigProblem[]): PayloadSchema | null {
  let text: string
  try {
    text = readConfigText(file)
  } catch (err) {
    problems.push({ path: at, message: `cannot read schema file ${file}: ${(err as Error).message}` })
    return null
  }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    problems.push({ path: at, message: `schema file ${file} is not JSON: ${(err as Error).message}` })
    return null
  }
  if (typeof doc !== 'object' && typeof doc !== 'boolean') {
    problems.push({ path: at, message: `schema file ${file} holds no JSON Schema (an object or a boolean)` })
    return null
  }
  try {
    const dialect = doc !== null && typeof doc === 'object' ? (doc as Record<string, unknown>).$schema : undefined
    const backtracking = new Map<string, string>()
    return new PayloadSchema(file, payloadAjv(dialect, backtracking).compile(doc as object), doc, backtracking)
  } catch (err) {
    problems.push({ path: at, message: `schema file ${file} does not compile: ${(err as Error).message}` })
    return null
  }
}
