// The byte scanner of a payload schema (docs/configuration.md#payload-schemas: how a payload is
// checked): one pass over a payload's bytes that decides "valid" for the schemas most buckets
// use (objects of strings, numbers, booleans and nulls with type, enum, const, pattern,
// lengths, ranges, required, additionalProperties, nested objects and arrays of those) without
// decoding the payload to a string, building its document or running ajv.
//
// It only ever answers "valid, certainly" (ajv would accept what JSON.parse makes of these
// bytes) or "cannot tell": a string with an escape or a byte above 0x7F, a schema rule it does
// not model, anything that would fail. The caller then parses and validates the payload the
// ordinary way, which gives every rejection its reason and ajv's error path. So the scanner
// needs no error messages and cannot reject what ajv would accept; what it accepts is checked
// against ajv in test/unit/payload-scan.test.ts, rule by rule and on mutated documents.
//
// The rules mirror ajv 8 as payload-schema.ts configures it (strict off, so strictNumbers off:
// an integer is a number with !(x % 1) && !isNaN(x); patterns compiled with the u flag (and run in bounded time where schema-pattern.ts can);
// lengths count code points, which for ASCII are bytes).

import { compileBytePattern } from './ascii-pattern.ts'
import { compileSchemaPattern, type SchemaPattern } from './schema-pattern.ts'

/** True when the payload bytes buf[start, end) are certainly valid; false when this cannot tell. */
export type ByteCheck = (buf: Buffer, start: number, end: number) => boolean

/** The scanner of a schema, or why the schema is outside what it models. */
export type ScanCompilation = { readonly check: ByteCheck, readonly reason: null } | { readonly check: null, readonly reason: string }

/** Returns the index just after the value starting at buf[i] (not whitespace), or -1: cannot tell. */
type ValueScan = (buf: Buffer, i: number, end: number) => number

/** Nesting the scanner follows for values no schema describes; deeper ones go to JSON.parse. */
const MAX_DEPTH = 64

// Keywords with no effect on validation here: annotations, and definitions that only a $ref
// (which the scanner does not model) could reach. `format` is not checked (validateFormats off).
const ANNOTATIONS = new Set([
  '$schema', '$id', '$comment', '$anchor', '$defs', 'definitions', 'title', 'description',
  'default', 'examples', 'deprecated', 'readOnly', 'writeOnly', 'format', 'contentMediaType', 'contentEncoding',
])

const TYPES = new Set(['string', 'number', 'integer', 'boolean', 'null', 'object', 'array'])

class Unsupported extends Error {}

/** Compiles a schema document (what the schema file holds) into its byte scanner, when it can be. */
export function compileByteCheck (schema: unknown): ScanCompilation {
  let root: ValueScan
  try {
    root = compileValue(schema, '')
  } catch (err) {
    if (err instanceof Unsupported) return { check: null, reason: err.message }
    throw err
  }
  const check: ByteCheck = (buf, start, end) => {
    let i = skipSpace(buf, start, end)
    if (i === end) return false
    i = root(buf, i, end)
    return i >= 0 && skipSpace(buf, i, end) === end
  }
  return { check, reason: null }
}

// ------------------------------------------------------------------------------ compiling

type Primitive = string | number | boolean | null

interface Rules {
  /** null: any type. `integer` is folded into `number` when both are listed (as ajv does). */
  types: Set<string> | null
  /** Every list must hold the value (enum, const). */
  oneOf: Primitive[][]
  minLength: number
  maxLength: number
  pattern: SchemaPattern | null
  minimum: number
  maximum: number
  exclusiveMinimum: number
  exclusiveMaximum: number
  object: ObjectRules | null
  array: ArrayRules | null
}

interface Property {
  readonly name: Buffer
  /** null for a required name not declared under `properties`: an additional property, scanned as one. */
  readonly scan: ValueScan | null
  /** Bit in the required mask, 0 when the property is not required. */
  readonly bit: number
}

interface ObjectRules {
  readonly properties: readonly Property[]
  readonly requiredMask: number
  /** null: additional properties are refused (cannot tell); else how their values are scanned. */
  readonly additional: ValueScan | null
}

interface ArrayRules {
  readonly items: ValueScan
  readonly minItems: number
  readonly maxItems: number
}

function unsupported (at: string, why: string): never {
  throw new Unsupported(`${why} at ${at === '' ? '/' : at}`)
}

function compileValue (schema: unknown, at: string): ValueScan {
  if (schema === true) return anyValue
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) unsupported(at, 'a schema that is not an object or true')
  const s = schema as Record<string, unknown>
  const rules: Rules = {
    types: null,
    oneOf: [],
    minLength: 0,
    maxLength: Infinity,
    pattern: null,
    minimum: -Infinity,
    maximum: Infinity,
    // NaN: not set (every comparison with it is false, so Infinity passes as ajv lets it).
    exclusiveMinimum: NaN,
    exclusiveMaximum: NaN,
    object: null,
    array: null,
  }
  let objectKeywords = false
  for (const [key, value] of Object.entries(s)) {
    const here = `${at}/${key}`
    switch (key) {
      case 'type': {
        const list = Array.isArray(value) ? value : [value]
        if (list.length === 0 || !list.every((t) => typeof t === 'string' && TYPES.has(t))) unsupported(here, 'a type the scanner does not know')
        const types = new Set(list as string[])
        if (types.has('number')) types.delete('integer')
        rules.types = types
        break
      }
      case 'enum':
        if (!Array.isArray(value) || !value.every(isPrimitive)) unsupported(here, 'an enum of objects or arrays')
        rules.oneOf.push(value as Primitive[])
        break
      case 'const':
        if (!isPrimitive(value)) unsupported(here, 'a const object or array')
        rules.oneOf.push([value as Primitive])
        break
      case 'minLength': rules.minLength = count(value, here); break
      case 'maxLength': rules.maxLength = count(value, here); break
      case 'pattern':
        if (typeof value !== 'string') unsupported(here, 'a pattern that is not a string')
        try {
          rules.pattern = compileSchemaPattern(value)
        } catch {
          unsupported(here, 'a pattern that does not compile')
        }
        break
      case 'minimum': rules.minimum = finite(value, here); break
      case 'maximum': rules.maximum = finite(value, here); break
      case 'exclusiveMinimum': rules.exclusiveMinimum = finite(value, here); break
      case 'exclusiveMaximum': rules.exclusiveMaximum = finite(value, here); break
      case 'properties':
      case 'required':
      case 'additionalProperties':
        objectKeywords = true
        break
      case 'items':
      case 'minItems':
      case 'maxItems':
        break
      default:
        if (!ANNOTATIONS.has(key) && !key.startsWith('x-')) unsupported(here, `the keyword ${key}`)
    }
  }
  if (objectKeywords) rules.object = compileObject(s, at)
  if ('items' in s || 'minItems' in s || 'maxItems' in s) rules.array = compileArray(s, at)
  return valueScan(rules)
}

function compileObject (s: Record<string, unknown>, at: string): ObjectRules {
  const declared = s.properties ?? {}
  if (typeof declared !== 'object' || declared === null || Array.isArray(declared)) unsupported(`${at}/properties`, 'properties that are not an object')
  const required = s.required ?? []
  if (!Array.isArray(required) || !required.every((r) => typeof r === 'string')) unsupported(`${at}/required`, 'required that is not a list of names')
  const names = new Set([...Object.keys(declared), ...required as string[]])
  for (const name of names) {
    // ajv reads `data[name]`, so a name Object.prototype has is found on every object.
    if (name in Object.prototype) unsupported(`${at}/properties`, `the property name ${name}`)
  }
  const requiredNames = new Set(required as string[])
  if (requiredNames.size > 30) unsupported(`${at}/required`, 'more than 30 required properties')
  let nextBit = 1
  let requiredMask = 0
  const properties: Property[] = []
  for (const name of names) {
    const scan = Object.hasOwn(declared, name) ? compileValue((declared as Record<string, unknown>)[name], `${at}/properties/${name}`) : null
    let bit = 0
    if (requiredNames.has(name)) {
      bit = nextBit
      nextBit *= 2
      requiredMask |= bit
    }
    // A name a scanned string cannot hold is left out: a member so named goes to JSON.parse
    // (and when it is required, every document does).
    const bytes = Buffer.from(name, 'utf8')
    if (plain(bytes)) properties.push({ name: bytes, scan, bit })
  }
  const extra = s.additionalProperties
  const additional = extra === false ? null : extra === undefined ? anyValue : compileValue(extra, `${at}/additionalProperties`)
  return { properties, requiredMask, additional }
}

function compileArray (s: Record<string, unknown>, at: string): ArrayRules {
  const items = s.items === undefined ? anyValue : Array.isArray(s.items) ? unsupported(`${at}/items`, 'items as a list (tuples)') : compileValue(s.items, `${at}/items`)
  const minItems = s.minItems === undefined ? 0 : count(s.minItems, `${at}/minItems`)
  const maxItems = s.maxItems === undefined ? Infinity : count(s.maxItems, `${at}/maxItems`)
  return { items, minItems, maxItems }
}

function isPrimitive (v: unknown): boolean {
  return v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'
}

function count (v: unknown, at: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) unsupported(at, 'a count that is not a whole number')
  return v
}

function finite (v: unknown, at: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) unsupported(at, 'a bound that is not a number')
  return v
}

// ------------------------------------------------------------------------------ scanning

const QUOTE = 0x22
const BACKSLASH = 0x5c
const MINUS = 0x2d
const COMMA = 0x2c
const COLON = 0x3a
const OPEN_OBJECT = 0x7b
const CLOSE_OBJECT = 0x7d
const OPEN_ARRAY = 0x5b
const CLOSE_ARRAY = 0x5d

function skipSpace (buf: Buffer, i: number, end: number): number {
  // Most documents have no whitespace between tokens.
  if (i < end && buf[i]! > 0x20) return i
  while (i < end) {
    const c = buf[i]!
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break
    i++
  }
  return i
}

/** The index of the closing quote of the string whose opening quote is buf[i]; -1 for an escape, a control or non-ASCII byte, or no end. */
function stringEnd (buf: Buffer, i: number, end: number): number {
  let j = i + 1
  // Short strings (names, enum values, short text) byte by byte; then eight bytes at a time
  // (bench: the words pay from about 32 bytes on).
  for (const stop = Math.min(end, j + 32); j < stop; j++) {
    const c = buf[j]!
    if (c === QUOTE) return j
    if (c === BACKSLASH || c < 0x20 || c > 0x7f) return -1
  }
  if (j + 8 <= end) {
    // Whole aligned words of the underlying memory (which byte of a word is which does not
    // matter: a word is only asked whether it holds a special byte).
    const words = wordsOf(buf)
    const offset = buf.byteOffset
    while (j < end && ((offset + j) & 3) !== 0) {
      const c = buf[j]!
      if (c === QUOTE) return j
      if (c === BACKSLASH || c < 0x20 || c > 0x7f) return -1
      j++
    }
    let w = (offset + j) >> 2
    for (const last = ((offset + end) >> 2) - 2; w <= last; w += 2) {
      if ((special(words[w]! | 0) | special(words[w + 1]! | 0)) !== 0) break
    }
    j = (w << 2) - offset
  }
  for (; j < end; j++) {
    const c = buf[j]!
    if (c === QUOTE) return j
    if (c === BACKSLASH || c < 0x20 || c > 0x7f) return -1
  }
  return -1
}

/**
 * Non-zero when a byte of the word w may be a quote, a backslash, below 0x20 or above 0x7f
 * (it may say so falsely after such a byte, never misses one): the zero-byte test applied
 * to w ^ '"', w ^ '\\' and, shifted by 0x20, to w itself.
 */
function special (w: number): number {
  const q = w ^ 0x22222222
  const b = w ^ 0x5c5c5c5c
  return (w | ((w - 0x20202020) & ~w) | ((q - 0x01010101) & ~q) | ((b - 0x01010101) & ~b)) & 0x80808080
}

let viewed: ArrayBufferLike | null = null
let words: Uint32Array = new Uint32Array(0)

/** The 32-bit words of the memory under buf (kept for the next call: the frames of one socket chunk share it). */
function wordsOf (buf: Buffer): Uint32Array {
  if (buf.buffer !== viewed) {
    viewed = buf.buffer
    words = new Uint32Array(buf.buffer, 0, buf.buffer.byteLength >> 2)
  }
  return words
}

/** Whether the last number numberEnd() scanned was written as an integer (no fraction, no exponent). */
let integerWritten = false

/** The index just after the JSON number starting at buf[i] (see integerWritten), or -1. */
function numberEnd (buf: Buffer, i: number, end: number): number {
  let j = buf[i] === MINUS ? i + 1 : i
  if (j >= end) return -1
  const first = buf[j]!
  if (first === 0x30) {
    j++
  } else if (first >= 0x31 && first <= 0x39) {
    j++
    while (j < end && isDigit(buf[j]!)) j++
  } else {
    return -1
  }
  integerWritten = true
  if (j < end && buf[j] === 0x2e) {
    integerWritten = false
    const digits = ++j
    while (j < end && isDigit(buf[j]!)) j++
    if (j === digits) return -1
  }
  if (j < end && (buf[j] === 0x65 || buf[j] === 0x45)) {
    integerWritten = false
    j++
    if (j < end && (buf[j] === 0x2b || buf[j] === MINUS)) j++
    const digits = j
    while (j < end && isDigit(buf[j]!)) j++
    if (j === digits) return -1
  }
  return j
}

/** The value JSON.parse gives the number numberEnd() scanned in buf[i, j). */
function numberValue (buf: Buffer, i: number, j: number): number {
  const negative = buf[i] === MINUS
  const from = negative ? i + 1 : i
  if (!integerWritten || j - from > 15) {
    // JSON's number grammar is a subset of Number()'s, and both round to nearest.
    return Number(buf.toString('latin1', i, j))
  }
  // Up to 15 digits are exact in a double; up to 9 stay small integers.
  let n = 0
  let k = from
  for (const nine = Math.min(j, from + 9); k < nine; k++) n = n * 10 + (buf[k]! - 0x30)
  for (; k < j; k++) n = n * 10 + (buf[k]! - 0x30)
  return negative ? -n : n
}

// Short strings are made in JavaScript from one reused array of char codes per length: a
// Buffer.toString call costs more than the string here (bench: 77 against 104 ns for 9 chars).
const CODES = Array.from({ length: 33 }, (_, n) => new Array<number>(n).fill(0))

/** buf[start, end) as a string, for bytes stringEnd() found to be ASCII. */
function asciiText (buf: Buffer, start: number, end: number): string {
  const codes = CODES[end - start]
  if (codes === undefined) return buf.toString('latin1', start, end)
  for (let k = 0; k < codes.length; k++) codes[k] = buf[start + k]!
  return String.fromCharCode.apply(null, codes)
}

function isDigit (c: number): boolean {
  return c >= 0x30 && c <= 0x39
}

function literalEnd (buf: Buffer, i: number, end: number, word: string): number {
  if (i + word.length > end) return -1
  for (let k = 0; k < word.length; k++) if (buf[i + k] !== word.charCodeAt(k)) return -1
  return i + word.length
}

/**
 * The index of the closing quote when the string whose opening quote is buf[i] is exactly
 * `expected` (plain() bytes), else -1: a known name or enum value is matched without first
 * looking for the string's end.
 */
function quotedAt (buf: Buffer, i: number, end: number, expected: Buffer): number {
  const q = i + 1 + expected.length
  if (q >= end || buf[q] !== QUOTE) return -1
  for (let k = 0; k < expected.length; k++) if (buf[i + 1 + k] !== expected[k]) return -1
  return q
}

/** Whether a string's UTF-8 bytes are all ones stringEnd() accepts, so that it can appear unescaped. */
function plain (bytes: Buffer): boolean {
  return bytes.every((c) => c >= 0x20 && c <= 0x7f && c !== QUOTE && c !== BACKSLASH)
}

function sameBytes (buf: Buffer, start: number, end: number, expected: Buffer): boolean {
  if (end - start !== expected.length) return false
  for (let k = 0; k < expected.length; k++) if (buf[start + k] !== expected[k]) return false
  return true
}

/** Any JSON value the scanner can read, to MAX_DEPTH levels of nesting. */
function skipAny (buf: Buffer, i: number, end: number, depth: number): number {
  switch (buf[i]) {
    case QUOTE: {
      const j = stringEnd(buf, i, end)
      return j < 0 ? -1 : j + 1
    }
    case OPEN_OBJECT: {
      if (depth >= MAX_DEPTH) return -1
      let j = skipSpace(buf, i + 1, end)
      if (j < end && buf[j] === CLOSE_OBJECT) return j + 1
      while (j < end) {
        if (buf[j] !== QUOTE) return -1
        const v = valueAfterName(buf, stringEnd(buf, j, end), end)
        if (v < 0) return -1
        j = next(buf, skipAny(buf, v, end, depth + 1), end, CLOSE_OBJECT)
        if (j < 0) return j === CLOSED ? closedAt : -1
      }
      return -1
    }
    case OPEN_ARRAY: {
      if (depth >= MAX_DEPTH) return -1
      let j = skipSpace(buf, i + 1, end)
      if (j < end && buf[j] === CLOSE_ARRAY) return j + 1
      while (j < end) {
        j = next(buf, skipAny(buf, j, end, depth + 1), end, CLOSE_ARRAY)
        if (j < 0) return j === CLOSED ? closedAt : -1
      }
      return -1
    }
    case 0x74: return literalEnd(buf, i, end, 'true')
    case 0x66: return literalEnd(buf, i, end, 'false')
    case 0x6e: return literalEnd(buf, i, end, 'null')
    default: return numberEnd(buf, i, end)
  }
}

const anyValue: ValueScan = (buf, i, end) => skipAny(buf, i, end, 0)

/** What next() returns when the bracket closed; the index after it is in closedAt. */
const CLOSED = -2
let closedAt = 0

/**
 * After a member ending at j (-1: cannot tell): the first byte of the next member after a
 * comma, or CLOSED (closedAt set) at the closing bracket `close`, or -1.
 */
function next (buf: Buffer, j: number, end: number, close: number): number {
  if (j < 0) return -1
  j = skipSpace(buf, j, end)
  if (j >= end) return -1
  const c = buf[j]
  if (c === close) {
    closedAt = j + 1
    return CLOSED
  }
  if (c !== COMMA) return -1
  j = skipSpace(buf, j + 1, end)
  return j < end ? j : -1
}

/** For the object member whose name's closing quote is buf[nameEnd] (-1: none): the first byte of its value, or -1. */
function valueAfterName (buf: Buffer, nameEnd: number, end: number): number {
  if (nameEnd < 0) return -1
  const colon = skipSpace(buf, nameEnd + 1, end)
  if (colon >= end || buf[colon] !== COLON) return -1
  const v = skipSpace(buf, colon + 1, end)
  return v < end ? v : -1
}

function valueScan (rules: Rules): ValueScan {
  const { types, minLength, maxLength, pattern, minimum, maximum, exclusiveMinimum, exclusiveMaximum } = rules
  const upTo = Math.min(maximum, isNaN(exclusiveMaximum) ? Infinity : exclusiveMaximum)
  const allows = (t: string): boolean => types === null || types.has(t)
  const strings = allows('string')
  const numbers = allows('number')
  const integers = numbers || allows('integer')
  const booleans = allows('boolean')
  const nulls = allows('null')
  const objects = allows('object')
  const arrays = allows('array')
  // enum/const: every list must hold the value. Strings are compared as bytes.
  const lists = rules.oneOf.map((list) => ({
    // A value with bytes a scanned string cannot hold could only match an escaped or
    // non-ASCII string, which the scanner leaves to JSON.parse anyway.
    strings: list.filter((v): v is string => typeof v === 'string').map((v) => Buffer.from(v, 'utf8')).filter(plain),
    others: list.filter((v) => typeof v !== 'string'),
  }))
  const firstStrings = lists.length === 0 ? null : lists[0]!.strings
  const inLists = (v: number | boolean | null): boolean => lists.every((l) => l.others.includes(v))
  const object = rules.object === null ? null : objectScan(rules.object)
  const array = rules.array === null ? null : arrayScan(rules.array)
  // The value is only worked out when a rule needs it: `minimum: 0` needs only the sign.
  const bytePattern = pattern === null ? null : compileBytePattern(pattern.source)
  const signOnly = lists.length === 0 && upTo === Infinity && minimum <= 0 && !(exclusiveMinimum >= 0)

  const stringScan: ValueScan = (buf, i, end) => {
    if (buf[i] !== QUOTE) return -1
    let j = -1
    if (firstStrings === null) {
      j = stringEnd(buf, i, end)
    } else {
      // enum/const: the first list's values are matched in place; the others compared.
      for (let o = 0; o < firstStrings.length && j < 0; o++) j = quotedAt(buf, i, end, firstStrings[o]!)
      for (let l = 1; l < lists.length && j >= 0; l++) {
        const options = lists[l]!.strings
        let found = false
        for (let o = 0; o < options.length && !found; o++) found = sameBytes(buf, i + 1, j, options[o]!)
        if (!found) j = -1
      }
    }
    if (j < 0) return -1
    const length = j - i - 1
    if (length < minLength || length > maxLength) return -1
    if (bytePattern !== null ? !bytePattern(buf, i + 1, j) : pattern !== null && !pattern.test(asciiText(buf, i + 1, j))) return -1
    return j + 1
  }

  const numberScan: ValueScan = (buf, i, end) => {
    const j = numberEnd(buf, i, end)
    if (j < 0 || (signOnly && integerWritten && buf[i] !== MINUS)) return j
    const n = numberValue(buf, i, j)
    // ajv's integer test without strictNumbers.
    if (!numbers && !integerWritten && !(!(n % 1) && !isNaN(n))) return -1
    if (n < minimum || n > maximum || n <= exclusiveMinimum || n >= exclusiveMaximum) return -1
    if (lists.length > 0 && !inLists(n)) return -1
    return j
  }

  // One type (the common case) gets a scanner of its own.
  const only = types !== null && types.size === 1 ? [...types][0] : null
  if (only === 'string') return stringScan
  if (only === 'integer' || only === 'number') return numberScan // numberEnd() refuses what is not a number
  return (buf, i, end) => {
    switch (buf[i]) {
      case QUOTE: return strings ? stringScan(buf, i, end) : -1
      case OPEN_OBJECT:
        if (!objects) return -1
        return object === null ? skipAny(buf, i, end, 0) : object(buf, i, end)
      case OPEN_ARRAY:
        if (!arrays) return -1
        return array === null ? skipAny(buf, i, end, 0) : array(buf, i, end)
      case 0x74:
        return booleans && inLists(true) ? literalEnd(buf, i, end, 'true') : -1
      case 0x66:
        return booleans && inLists(false) ? literalEnd(buf, i, end, 'false') : -1
      case 0x6e:
        return nulls && inLists(null) ? literalEnd(buf, i, end, 'null') : -1
      default:
        return integers ? numberScan(buf, i, end) : -1
    }
  }
}

function objectScan (rules: ObjectRules): ValueScan {
  const { properties, requiredMask, additional } = rules
  return (buf, i, end) => {
    let seen = 0
    let j = skipSpace(buf, i + 1, end)
    if (j < end && buf[j] === CLOSE_OBJECT) return requiredMask === 0 ? j + 1 : -1
    let last = properties.length - 1
    while (j < end) {
      if (buf[j] !== QUOTE) return -1
      // Names are matched in place, starting after the last one matched (documents tend
      // to follow the schema's order). A name given twice: JSON.parse keeps the last
      // value, and every value is checked.
      let scan = additional
      let nameEnd = -1
      for (let t = 0, p = last; t < properties.length; t++) {
        if (++p === properties.length) p = 0
        const prop = properties[p]!
        nameEnd = quotedAt(buf, j, end, prop.name)
        if (nameEnd < 0) continue
        last = p
        seen |= prop.bit
        if (prop.scan !== null) scan = prop.scan
        break
      }
      if (nameEnd < 0) nameEnd = stringEnd(buf, j, end)
      const v = valueAfterName(buf, nameEnd, end)
      if (v < 0) return -1
      if (scan === null) return -1
      j = next(buf, scan(buf, v, end), end, CLOSE_OBJECT)
      if (j === CLOSED) return (seen & requiredMask) === requiredMask ? closedAt : -1
      if (j < 0) return -1
    }
    return -1
  }
}

function arrayScan (rules: ArrayRules): ValueScan {
  const { items, minItems, maxItems } = rules
  return (buf, i, end) => {
    let j = skipSpace(buf, i + 1, end)
    if (j < end && buf[j] === CLOSE_ARRAY) return minItems === 0 ? j + 1 : -1
    let n = 0
    while (j < end) {
      n++
      if (n > maxItems) return -1
      j = next(buf, items(buf, j, end), end, CLOSE_ARRAY)
      if (j === CLOSED) return n >= minItems ? closedAt : -1
      if (j < 0) return -1
    }
    return -1
  }
}
