"""A connection to kahets: fire-and-forget (the default) or acknowledged mode.

Acknowledged mode (docs/protocol.md, "Control frames"): the connection starts with HELLO;
frames are numbered from 0 over the life of the Client (their global index) and kept until
kahets settles them. Each connection counts its data frames from 0, and its frame i is global
frame conn_base + i, because a new connection first sends again every kept frame, in order.
After CLOSING <read> the frames before `read` count as settled (kahets still delivers them)
and the rest are sent again; after a broken connection, the frames past the last ACK are.
"""
import atexit
import logging
import select
import socket
import time
import weakref
from collections import deque
from typing import Deque, Optional, Set

from . import wire
from .wire import Bytes

log = logging.getLogger('kahets')

# Socket paths this process logged as down: "kahets is down" once per process, not per Client.
_down: Set[str] = set()

# Clients in acknowledged mode: at exit, one that was never closed is closed (flushed, and what
# kahets did not confirm is logged), so a script that forgets close() still learns of it.
_ack_clients: 'weakref.WeakSet[Client]' = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    for client in list(_ack_clients):
        client.close()


class Client:
    def __init__(self, path: str = '/tmp/kahets.sock', ack: Optional[str] = None, timeout: float = 1.0,
                 max_frame_bytes: int = wire.DEFAULT_MAX_FRAME_BYTES,
                 max_unsettled_frames: int = 10000, max_unsettled_bytes: int = 8 * 1024 * 1024) -> None:
        if ack is not None and ack not in wire.LEVELS:
            raise ValueError("ack must be None, 'accepted' or 'durable', not %r" % (ack,))
        if not timeout > 0:
            raise ValueError('timeout must be positive, not %r' % (timeout,))
        self.path = path
        self.ack = ack
        self.timeout = float(timeout)
        self.max_frame_bytes = max_frame_bytes
        self.max_unsettled_frames = max_unsettled_frames
        self.max_unsettled_bytes = max_unsettled_bytes
        self._sock: Optional[socket.socket] = None
        self._closed = False
        # Acknowledged mode's state.
        self._frames: Deque[bytes] = deque()  # unsettled frames; _frames[0] has global index _settled
        self._bytes = 0
        self._sent = 0
        self._settled = 0
        self._refused = 0
        self._conn_base = 0
        self._conn_refused_base = 0
        self._written = 0  # global index of the next frame to write on this connection
        self._in = bytearray()
        self._token = 0
        self._bound_logged = False
        self._refused_before_flush = 0
        self.last_refused = 0
        """How many frames kahets refused that it reported during the last flush() (or since the one before)."""
        self.last_refusal: Optional[str] = None
        """The last REFUSED detail kahets sent: 'frame <global index>: <reason>'."""
        if ack is not None:
            _ack_clients.add(self)

    # -- public ---------------------------------------------------------------------------

    @property
    def settled(self) -> int:
        """Frames sent through this Client that kahets settled (reached the level)."""
        return self._settled

    @property
    def refused(self) -> int:
        """Of the settled frames, how many kahets refused (invalid, unknown bucket, rejected topic...)."""
        return self._refused

    @property
    def unsettled(self) -> int:
        """Frames sent and kept, not settled yet (always 0 without ack)."""
        return self._sent - self._settled

    def send(self, bucket: str, payload: Bytes, key: Optional[Bytes] = None) -> bool:
        """Sends one message. ValueError for input kahets would reject; False (logged) when it
        cannot be sent: kahets down (fire-and-forget), or too many unsettled frames (ack)."""
        if self._closed:
            raise ValueError('kahets client is closed')
        frame = wire.encode_frame(bucket, payload, key, self.max_frame_bytes)
        if self.ack is None:
            return self._send_fire_and_forget(frame)
        return self._keep(frame)

    def flush(self, timeout: float = 1.0) -> bool:
        """Acknowledged mode: sends SYNC and waits, at most `timeout` seconds, until every frame
        sent so far is settled; False when they are not. Fire-and-forget: True."""
        if self.ack is None:
            return True
        target = self._sent
        deadline = time.monotonic() + timeout
        synced = False
        while self._settled < target:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if self._sock is None:
                if not self._connect():
                    time.sleep(min(0.02, left))
                    continue
                synced = False
            if not synced:
                self._token += 1
                synced = self._write(wire.sync(self._token))
                continue
            self._wait(left)
        self.last_refused = self._refused - self._refused_before_flush
        self._refused_before_flush = self._refused
        return self._settled >= target

    def close(self) -> bool:
        """Flushes (acknowledged mode, at most the client's timeout) and closes. Returns flush()'s result."""
        if self._closed:
            return self.unsettled == 0
        ok = self.flush(self.timeout)
        if not ok:
            log.error('kahets client: %d frame(s) sent to %s were not confirmed by kahets within %.3f s; they may be lost',
                      self.unsettled, self.path, self.timeout)
        self._closed = True
        self._drop()
        return ok

    def __enter__(self) -> 'Client':
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- fire-and-forget ------------------------------------------------------------------

    def _send_fire_and_forget(self, frame: bytes) -> bool:
        for attempt in (1, 2):
            if self._sock is None and not self._open():
                return False
            try:
                self._sock.sendall(frame)  # type: ignore[union-attr]
                return True
            except socket.timeout:
                log.warning('kahets client: write to %s timed out after %.3f s; kahets is not reading; not sent', self.path, self.timeout)
                self._drop()
                return False
            except OSError as e:
                # The kernel took none of a frame only if the error came first; a partial frame
                # is possible, so the connection is dropped and the whole frame written again.
                self._drop()
                if attempt == 2:
                    log.warning('kahets client: write to %s failed again after reconnecting (%s); not sent', self.path, e)
                    return False
                log.warning('kahets client: reconnecting to %s after a failed write (%s)', self.path, e)
        return False

    # -- acknowledged mode ----------------------------------------------------------------

    def _keep(self, frame: bytes) -> bool:
        self._poll()
        if self.unsettled + 1 > self.max_unsettled_frames or self._bytes + len(frame) > self.max_unsettled_bytes:
            if not self._bound_logged:
                self._bound_logged = True
                log.error('kahets client: %d frames (%d bytes) sent to %s are not settled yet, the most this client keeps; '
                          'send() returns False until kahets settles some (call flush())', self.unsettled, self._bytes, self.path)
            return False
        self._frames.append(frame)
        self._bytes += len(frame)
        self._sent += 1
        if self._sock is None:
            self._connect()
        else:
            self._write_pending()
        self._poll()
        return True

    def _connect(self) -> bool:
        if not self._open():
            return False
        self._conn_base = self._settled
        self._conn_refused_base = self._refused
        self._written = self._settled
        self._in = bytearray()
        if not self._write(wire.hello(wire.LEVELS[self.ack])):  # type: ignore[index]
            return False
        return self._write_pending()

    def _write_pending(self) -> bool:
        if self._written >= self._sent:
            return True
        start = self._written - self._settled
        data = b''.join(self._frames[i] for i in range(start, len(self._frames)))
        self._written = self._sent
        return self._write(data)

    def _write(self, data: bytes) -> bool:
        if self._sock is None:
            return False
        try:
            self._sock.sendall(data)
            return True
        except OSError as e:
            why = 'write timed out after %.3f s' % self.timeout if isinstance(e, socket.timeout) else str(e)
            # kahets may have said CLOSING before it closed: read it first, so only the frames
            # past `read` are sent again, not all those past the last ACK.
            self._poll()
            if self._sock is not None:
                self._lost('write to kahets failed: %s' % why)
            return False

    def _poll(self) -> None:
        """Reads what kahets sent, without blocking."""
        while self._sock is not None:
            try:
                readable, _, _ = select.select([self._sock], [], [], 0)
            except (OSError, ValueError):
                return
            if not readable or not self._read_some():
                return

    def _wait(self, seconds: float) -> None:
        if self._sock is None:
            return
        try:
            readable, _, _ = select.select([self._sock], [], [], seconds)
        except (OSError, ValueError):
            self._lost('select failed')
            return
        if readable:
            self._read_some()

    def _read_some(self) -> bool:
        """Reads one chunk and acts on its control frames; False when the connection is gone."""
        sock = self._sock
        if sock is None:
            return False
        try:
            chunk = sock.recv(65536)
        except OSError as e:
            self._lost('reading from kahets failed: %s' % e)
            return False
        if not chunk:
            self._lost('kahets closed the connection')
            return False
        self._in += chunk
        try:
            frames = wire.parse(self._in)
        except wire.ProtocolError as e:
            self._lost(str(e))
            return False
        for f in frames:
            if f[0] in ('ack', 'synced'):
                settled, refused = (f[1], f[2]) if f[0] == 'ack' else (f[2], f[3])
                self._settle(self._conn_base + settled, self._conn_refused_base + refused)
            elif f[0] == 'refused':
                self.last_refusal = 'frame %d: %s' % (self._conn_base + f[1], f[2])
            elif f[0] == 'closing':
                # Frames before `read` still reach their level; the rest were not read.
                self._settle(self._conn_base + f[1], self._refused)
                self._lost('kahets is closing the connection after %d frames' % f[1])
                return False
        return True

    def _settle(self, settled: int, refused: int) -> None:
        settled = min(settled, self._written)  # never past what this connection carried
        while self._settled < settled:
            self._bytes -= len(self._frames.popleft())
            self._settled += 1
            self._bound_logged = False
        if refused > self._refused:
            self._refused = refused

    def _lost(self, why: str) -> None:
        if self.unsettled > 0:
            log.warning('kahets client: %s (%s); %d unsettled frame(s) will be sent again', why, self.path, self.unsettled)
        self._drop()

    # -- the socket -----------------------------------------------------------------------

    def _open(self) -> bool:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError as e:
            sock.close()
            if self.path not in _down:
                _down.add(self.path)
                log.error('kahets client: cannot connect to %s (%s); is kahets running? (further failures are not logged '
                          'until a connection succeeds)', self.path, e)
            return False
        if self.path in _down:
            _down.discard(self.path)
            log.warning('kahets client: connected to %s again', self.path)
        self._sock = sock
        return True

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
