// Control frames of acknowledged mode (docs/protocol.md, "Control frames"). Pure: no I/O.
//
// A control frame is an ordinary frame whose bucketLen is 0; the byte after it is the opcode.
// Integers are little-endian.
//
//   control = length:u32le 0x00 body          ; length = 1 + byte length of body
//   body    = HELLO / ACK / SYNC / SYNCED / CLOSING / REFUSED
//   HELLO   = 0x01 version:u8 level:u8                               ; client → kahets, N = 4
//   ACK     = 0x02 settled:u64 refused:u64                           ; kahets → client, N = 18
//   SYNC    = 0x03 token:u64                                         ; client → kahets, N = 10
//   SYNCED  = 0x04 token:u64 settled:u64 refused:u64                 ; kahets → client, N = 26
//   CLOSING = 0x05 read:u64                                          ; kahets → client, N = 10
//   REFUSED = 0x06 index:u64 reasonLen:u8 reason                     ; kahets → client, N = 11 + reasonLen
//   version = 0x01
//   level   = 0x01 (accepted) / 0x02 (durable)
//
// u64 fields are JavaScript numbers bounded by Number.MAX_SAFE_INTEGER (2^53 − 1), and a
// larger value is a malformed frame. They count data frames of one connection (at a million
// frames a second, 2^53 is 285 years away) or carry a client's SYNC token (a counter); numbers
// keep the session's hot-path arithmetic free of BigInt allocations, and PHP (signed 64-bit
// int) and Python (int) clients hold such values exactly.
import { ErrorCodes, ProtocolError } from '../errors.ts'
import { LENGTH_BYTES } from './frame.ts'

export const Opcode = {
  HELLO: 1,
  ACK: 2,
  SYNC: 3,
  SYNCED: 4,
  CLOSING: 5,
  REFUSED: 6,
} as const
export type Opcode = (typeof Opcode)[keyof typeof Opcode]

/** HELLO levels: 1 = accepted (kahets read and holds the frame), 2 = durable (every stream has it). */
export const AckLevel = {
  ACCEPTED: 1,
  DURABLE: 2,
} as const
export type AckLevel = (typeof AckLevel)[keyof typeof AckLevel]
export type AckLevelName = 'accepted' | 'durable'

export const PROTOCOL_VERSION = 1
export const MAX_U64 = Number.MAX_SAFE_INTEGER
export const MAX_REASON_BYTES = 255

export type ControlFrame =
  | { readonly type: 'hello', readonly version: 1, readonly level: AckLevel }
  | { readonly type: 'ack', readonly settled: number, readonly refused: number }
  | { readonly type: 'sync', readonly token: number }
  | { readonly type: 'synced', readonly token: number, readonly settled: number, readonly refused: number }
  | { readonly type: 'closing', readonly read: number }
  | { readonly type: 'refused', readonly index: number, readonly reason: string }

/** Body length (opcode included) of each opcode's frame; REFUSED's is the least, 10 + reasonLen. */
const BODY_BYTES: Readonly<Record<Opcode, number>> = {
  [Opcode.HELLO]: 3,
  [Opcode.ACK]: 17,
  [Opcode.SYNC]: 9,
  [Opcode.SYNCED]: 25,
  [Opcode.CLOSING]: 9,
  [Opcode.REFUSED]: 10,
}

/** The largest N of any control frame (a REFUSED with a 255-byte reason). */
export const MAX_CONTROL_FRAME_BYTES = 1 + BODY_BYTES[Opcode.REFUSED] + MAX_REASON_BYTES

/**
 * What was wrong with a control frame. `hello`: a HELLO with a version or level kahets does
 * not know, or of the wrong length; kahets answers it with CLOSING 0 and closes
 * (docs/protocol.md, "HELLO"). The others: the frame is skipped, counted invalid
 * (`reason="control_frame"`), and the connection stays open.
 */
export type ControlProblem = 'empty' | 'unknown_opcode' | 'length' | 'hello' | 'u64_range' | 'not_control'

export class ControlFrameError extends ProtocolError {
  readonly problem: ControlProblem
  /** The opcode byte, or -1 when the body had none. */
  readonly opcode: number

  constructor (problem: ControlProblem, opcode: number, message: string) {
    super(ErrorCodes.CONTROL_FRAME_INVALID, message)
    this.name = 'ControlFrameError'
    this.problem = problem
    this.opcode = opcode
  }
}

/**
 * Decodes a control frame's body: the bytes after `u32 N | u8 0`, opcode first (so
 * body.length = N − 1). Returns the frame, or the ControlFrameError saying what is wrong;
 * it never throws, since a malformed frame is an expected input the caller counts.
 */
export function decodeControl (body: Uint8Array): ControlFrame | ControlFrameError {
  if (body.length === 0) return new ControlFrameError('empty', -1, 'control frame without an opcode')
  const op = body[0]!
  if (op < Opcode.HELLO || op > Opcode.REFUSED) return new ControlFrameError('unknown_opcode', op, `unknown control opcode ${op}`)
  const expected = BODY_BYTES[op as Opcode]
  const lengthOk = op === Opcode.REFUSED ? body.length >= expected && body.length === expected + body[expected - 1]! : body.length === expected
  if (!lengthOk) {
    const problem = op === Opcode.HELLO ? 'hello' : 'length'
    const want = op === Opcode.REFUSED ? `${expected} + reasonLen` : String(expected)
    return new ControlFrameError(problem, op, `control opcode ${op} with a ${body.length}-byte body; expected ${want}`)
  }
  const view = Buffer.from(body.buffer, body.byteOffset, body.length)
  switch (op as Opcode) {
    case Opcode.HELLO: {
      const version = view[1]!
      const level = view[2]!
      if (version !== PROTOCOL_VERSION) return new ControlFrameError('hello', op, `HELLO with unknown version ${version}`)
      if (level !== AckLevel.ACCEPTED && level !== AckLevel.DURABLE) return new ControlFrameError('hello', op, `HELLO with unknown level ${level}`)
      return { type: 'hello', version: PROTOCOL_VERSION, level }
    }
    case Opcode.SYNC: {
      const token = readU64(view, 1)
      return token < 0 ? rangeError(op) : { type: 'sync', token }
    }
    case Opcode.ACK: {
      const settled = readU64(view, 1)
      const refused = readU64(view, 9)
      return settled < 0 || refused < 0 ? rangeError(op) : { type: 'ack', settled, refused }
    }
    case Opcode.SYNCED: {
      const token = readU64(view, 1)
      const settled = readU64(view, 9)
      const refused = readU64(view, 17)
      return token < 0 || settled < 0 || refused < 0 ? rangeError(op) : { type: 'synced', token, settled, refused }
    }
    case Opcode.CLOSING: {
      const read = readU64(view, 1)
      return read < 0 ? rangeError(op) : { type: 'closing', read }
    }
    case Opcode.REFUSED: {
      const index = readU64(view, 1)
      return index < 0 ? rangeError(op) : { type: 'refused', index, reason: view.toString('utf8', 10) }
    }
  }
}

function rangeError (op: number): ControlFrameError {
  return new ControlFrameError('u64_range', op, `control opcode ${op} with a u64 field above ${MAX_U64} (Number.MAX_SAFE_INTEGER)`)
}

/** A u64 at `at`, or −1 when it exceeds MAX_U64. */
function readU64 (buf: Buffer, at: number): number {
  const lo = buf.readUInt32LE(at)
  const hi = buf.readUInt32LE(at + 4)
  if (hi > 0x1fffff) return -1
  return hi * 0x100000000 + lo
}

function writeU64 (buf: Buffer, at: number, value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${field} must be an integer in 0..${MAX_U64}, not ${value}`)
  buf.writeUInt32LE(value % 0x100000000, at)
  buf.writeUInt32LE(Math.floor(value / 0x100000000), at + 4)
  return at + 8
}

/** A whole control frame (length prefix and bucketLen 0 included) with room for `bodyBytes`. */
function frame (op: Opcode, bodyBytes: number): Buffer {
  const buf = Buffer.allocUnsafe(LENGTH_BYTES + 1 + bodyBytes)
  buf.writeUInt32LE(1 + bodyBytes, 0)
  buf[4] = 0
  buf[5] = op
  return buf
}

const FIELDS = LENGTH_BYTES + 2 // where the fields after the opcode start

export function encodeHello (level: AckLevel, version: number = PROTOCOL_VERSION): Buffer {
  const buf = frame(Opcode.HELLO, BODY_BYTES[Opcode.HELLO])
  buf[FIELDS] = version
  buf[FIELDS + 1] = level
  return buf
}

export function encodeAck (settled: number, refused: number): Buffer {
  const buf = frame(Opcode.ACK, BODY_BYTES[Opcode.ACK])
  writeU64(buf, writeU64(buf, FIELDS, settled, 'settled'), refused, 'refused')
  return buf
}

export function encodeSync (token: number): Buffer {
  const buf = frame(Opcode.SYNC, BODY_BYTES[Opcode.SYNC])
  writeU64(buf, FIELDS, token, 'token')
  return buf
}

export function encodeSynced (token: number, settled: number, refused: number): Buffer {
  const buf = frame(Opcode.SYNCED, BODY_BYTES[Opcode.SYNCED])
  writeU64(buf, writeU64(buf, writeU64(buf, FIELDS, token, 'token'), settled, 'settled'), refused, 'refused')
  return buf
}

export function encodeClosing (read: number): Buffer {
  const buf = frame(Opcode.CLOSING, BODY_BYTES[Opcode.CLOSING])
  writeU64(buf, FIELDS, read, 'read')
  return buf
}

/** A REFUSED; a reason over 255 bytes of UTF-8 is cut at 255 bytes (it is a hint for a log line). */
export function encodeRefused (index: number, reason: string): Buffer {
  let reasonBytes = Buffer.from(reason, 'utf8')
  if (reasonBytes.length > MAX_REASON_BYTES) reasonBytes = reasonBytes.subarray(0, MAX_REASON_BYTES)
  const buf = frame(Opcode.REFUSED, BODY_BYTES[Opcode.REFUSED] + reasonBytes.length)
  const o = writeU64(buf, FIELDS, index, 'index')
  buf[o] = reasonBytes.length
  reasonBytes.copy(buf, o + 1)
  return buf
}

export function encodeControl (f: ControlFrame): Buffer {
  switch (f.type) {
    case 'hello': return encodeHello(f.level, f.version)
    case 'ack': return encodeAck(f.settled, f.refused)
    case 'sync': return encodeSync(f.token)
    case 'synced': return encodeSynced(f.token, f.settled, f.refused)
    case 'closing': return encodeClosing(f.read)
    case 'refused': return encodeRefused(f.index, f.reason)
    default: {
      const never: never = f
      throw new TypeError(`unknown control frame ${JSON.stringify(never)}`)
    }
  }
}

/**
 * Reads the kahets → client byte stream, which carries only control frames: push(chunk)
 * keeps a partial frame and returns the frames completed so far. The clients use it; a
 * malformed frame (not bucketLen 0, a length beyond any control frame, a bad body) throws
 * ControlFrameError, and the client drops the connection, since the stream is not
 * kahets' protocol.
 */
export class ControlReader {
  #pending: Buffer = Buffer.alloc(0)

  /** Bytes of an unfinished frame held back. */
  get pendingBytes (): number {
    return this.#pending.length
  }

  push (chunk: Uint8Array): ControlFrame[] {
    let buf = this.#pending.length === 0 ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length) : Buffer.concat([this.#pending, chunk])
    const out: ControlFrame[] = []
    let pos = 0
    while (buf.length - pos >= LENGTH_BYTES) {
      const n = buf.readUInt32LE(pos)
      if (n < 2 || n > MAX_CONTROL_FRAME_BYTES) throw new ControlFrameError('length', -1, `frame of length ${n} from kahets; control frames are 2..${MAX_CONTROL_FRAME_BYTES} bytes`)
      if (buf.length - pos >= LENGTH_BYTES + 1 && buf[pos + LENGTH_BYTES] !== 0) throw new ControlFrameError('not_control', -1, `frame with bucketLen ${buf[pos + LENGTH_BYTES]} from kahets; it sends only control frames`)
      if (buf.length - pos < LENGTH_BYTES + n) break
      const f = decodeControl(buf.subarray(pos + LENGTH_BYTES + 1, pos + LENGTH_BYTES + n))
      if (f instanceof ControlFrameError) throw f
      out.push(f)
      pos += LENGTH_BYTES + n
    }
    buf = buf.subarray(pos)
    // A copy, so the pending tail does not pin the caller's (possibly large) chunk.
    this.#pending = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf)
    return out
  }
}
