// A bucket's payload schema (docs/configuration.md#payload-schemas; issue 14): a JSON Schema file named by
// `schema` in the buckets file, compiled once with ajv when the buckets file is read (and
// again on SIGHUP, which reads it again), then run on every payload of the bucket.
//
// A payload passes when it is UTF-8 JSON (RFC 8259: JSON text is UTF-8) that validates. It is
// decoded and parsed once, here, and the parsed value is dropped: streams write the payload's
// bytes unchanged.
import { isUtf8 } from 'node:buffer'
import { readFileSync } from 'node:fs'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { Ajv2019 } from 'ajv/dist/2019.js'
import { Ajv2020 } from 'ajv/dist/2020.js'
import type { ConfigProblem } from '../errors.ts'
import { WireFrame, type Frame } from '../protocol/frame.ts'

/** Why a payload was rejected; also the `reason` label of kahets_schema_rejected_total. */
export type SchemaRejection = 'not_json' | 'invalid'

/** What a rejected payload's first failure was, for the log (docs/configuration.md#payload-schemas: the ajv error path). */
export interface SchemaFailure {
  readonly reason: SchemaRejection
  /** JSON Pointer into the payload (ajv's instancePath), '' for the whole document. */
  readonly path: string
  readonly message: string
}


export class PayloadSchema {
  /** Absolute path of the schema file. */
  readonly file: string
  readonly #validate: ValidateFunction

  constructor (file: string, validate: ValidateFunction) {
    this.file = file
    this.#validate = validate
  }

  /** null when the frame's payload passes; else the first failure. */
  check (frame: Frame): SchemaFailure | null {
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

// The JSON Schema dialect a schema declares picks ajv's class; without $schema, draft-07.
function ajvFor (dialect: unknown): Ajv {
  // Options: the first failure is enough (it is what gets logged) and stops early; `strict`
  // off so annotations other tools use (x-*, examples under other names) are not compile
  // errors; `format` is not checked (ajv knows no formats without ajv-formats).
  const opts = { allErrors: false, strict: false, validateFormats: false, logger: false as const }
  if (typeof dialect === 'string' && dialect.includes('2020-12')) return new Ajv2020(opts)
  if (typeof dialect === 'string' && dialect.includes('2019-09')) return new Ajv2019(opts)
  return new Ajv(opts)
}

/** Reads and compiles a schema file; a problem at `at` (with the file's path) if it cannot. */
export function compilePayloadSchema (file: string, at: string, problems: ConfigProblem[]): PayloadSchema | null {
  let doc: unknown
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    problems.push({ path: at, message: e.code === undefined ? `schema file ${file} is not JSON: ${e.message}` : `cannot read schema file ${file}: ${e.message}` })
    return null
  }
  if (typeof doc !== 'object' && typeof doc !== 'boolean') {
    problems.push({ path: at, message: `schema file ${file} holds no JSON Schema (an object or a boolean)` })
    return null
  }
  try {
    const dialect = doc !== null && typeof doc === 'object' ? (doc as Record<string, unknown>).$schema : undefined
    return new PayloadSchema(file, ajvFor(dialect).compile(doc as object))
  } catch (err) {
    problems.push({ path: at, message: `schema file ${file} does not compile: ${(err as Error).message}` })
    return null
  }
}
