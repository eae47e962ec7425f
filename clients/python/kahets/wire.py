"""The bytes on kahets' socket (docs/protocol.md in the kahets repository).

Data frame:     u32le N | u8 bucketLen | bucket | u8 keyLen | key | payload
Control frame:  u32le N | u8 0 | u8 opcode | fields (little-endian; u64 values <= 2**53 - 1)
    HELLO   1  u8 version, u8 level      client -> kahets
    ACK     2  u64 settled, u64 refused  kahets -> client
    SYNC    3  u64 token                 client -> kahets
    SYNCED  4  u64 token, settled, refused
    CLOSING 5  u64 read
    REFUSED 6  u64 index, u8 reasonLen, reason
"""
import re
import struct
from typing import List, Optional, Tuple, Union

HELLO, ACK, SYNC, SYNCED, CLOSING, REFUSED = 1, 2, 3, 4, 5, 6
VERSION = 1
LEVELS = {'accepted': 1, 'durable': 2}
MAX_NAME_BYTES = 255
DEFAULT_MAX_FRAME_BYTES = 1024 * 1024
MAX_CONTROL_FRAME_BYTES = 266  # a REFUSED with a 255-byte reason
MAX_U64 = 2 ** 53 - 1

_BUCKET = re.compile(rb'[A-Za-z0-9._-]{1,255}\Z')

Bytes = Union[bytes, bytearray, memoryview, str]


def _as_bytes(value: Bytes) -> bytes:
    return value.encode('utf-8') if isinstance(value, str) else bytes(value)


def encode_frame(bucket: str, payload: Bytes, key: Optional[Bytes] = None,
                 max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> bytes:
    """One data frame; ValueError for what kahets would reject. A key of None or b'' is keyLen 0: a null Kafka key."""
    b = bucket.encode('latin-1', 'replace') if isinstance(bucket, str) else b''
    if not isinstance(bucket, str) or not _BUCKET.match(b) or b in (b'.', b'..') or len(b) != len(bucket):
        raise ValueError('invalid bucket name %r: 1..255 bytes of [A-Za-z0-9._-], not "." or ".."' % (bucket,))
    k = b'' if key is None else _as_bytes(key)
    if len(k) > MAX_NAME_BYTES:
        raise ValueError('key is %d bytes; at most %d' % (len(k), MAX_NAME_BYTES))
    p = _as_bytes(payload)
    n = 2 + len(b) + len(k) + len(p)
    if n > max_frame_bytes:
        raise ValueError('frame for bucket %s is %d bytes; at most %d (max_frame_bytes)' % (bucket, n, max_frame_bytes))
    return struct.pack('<IB', n, len(b)) + b + bytes((len(k),)) + k + p


def hello(level: int) -> bytes:
    return struct.pack('<IBBBB', 4, 0, HELLO, VERSION, level)


def sync(token: int) -> bytes:
    return struct.pack('<IBBQ', 10, 0, SYNC, token)


class ProtocolError(Exception):
    """kahets sent bytes that are not its control frames: the connection cannot be used."""


def parse(buffer: bytearray) -> List[Tuple]:
    """Takes the complete control frames off the front of buffer; a partial one stays.

    Returns tuples: ('ack', settled, refused), ('synced', token, settled, refused),
    ('closing', read), ('refused', index, reason). Raises ProtocolError on anything else.
    """
    out = []
    pos = 0
    while len(buffer) - pos >= 5:
        n = struct.unpack_from('<I', buffer, pos)[0]
        if n < 2 or n > MAX_CONTROL_FRAME_BYTES or buffer[pos + 4] != 0:
            raise ProtocolError('kahets sent a frame of length %d with bucketLen %d' % (n, buffer[pos + 4]))
        if len(buffer) - pos < 4 + n:
            break
        body = bytes(buffer[pos + 5:pos + 4 + n])
        out.append(_decode(body))
        pos += 4 + n
    del buffer[:pos]
    return out


def _decode(body: bytes) -> Tuple:
    op = body[0]
    if op == ACK and len(body) == 17:
        f = ('ack',) + struct.unpack_from('<QQ', body, 1)
    elif op == SYNCED and len(body) == 25:
        f = ('synced',) + struct.unpack_from('<QQQ', body, 1)
    elif op == CLOSING and len(body) == 9:
        f = ('closing',) + struct.unpack_from('<Q', body, 1)
    elif op == REFUSED and len(body) >= 10 and len(body) == 10 + body[9]:
        f = ('refused', struct.unpack_from('<Q', body, 1)[0], body[10:].decode('utf-8', 'replace'))
    else:
        raise ProtocolError('kahets sent control opcode %d with a %d-byte body' % (op, len(body)))
    if any(isinstance(v, int) and v > MAX_U64 for v in f[1:]):
        raise ProtocolError('kahets sent a u64 above 2**53 - 1')
    return f
