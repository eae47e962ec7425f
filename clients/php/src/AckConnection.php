<?php

declare(strict_types=1);

namespace Kahets;

/**
 * One acknowledged-mode connection to kahets (docs/protocol.md, "Control frames"), shared by
 * every Client of the process with the same socket path and level.
 *
 * Frames are numbered from 0 over the life of the process (their "global" index). Each
 * connection starts with HELLO and counts its data frames from 0; its frame i is global frame
 * $connBase + i, because a new connection first sends again every kept frame, in order.
 *
 * - keep() stores a frame (at most MAX_FRAMES frames or MAX_BYTES bytes unsettled), writes it
 *   and reads whatever ACKs have arrived, without waiting for any.
 * - flush() sends SYNC and waits (up to a timeout) until every kept frame is settled.
 * - CLOSING <read>: frames before `read` count as settled (kahets still delivers them); the
 *   connection is replaced and the frames from `read` on are written again. A broken
 *   connection (EPIPE, EOF, a timed-out write) is replaced the same way, resending from the
 *   last settled count.
 *
 * The connection is never persistent: a persistent socket would outlive this object's count of
 * what was sent on it (PHP-FPM drops all objects at the end of a request), and kahets' counts
 * start at HELLO. At the end of the process (or request) a shutdown function flushes what is
 * still unsettled, so a request that never called flush() still learns, in the log, of frames
 * kahets did not confirm.
 */
final class AckConnection
{
    public const MAX_FRAMES = 10000;
    public const MAX_BYTES = 8388608;

    /** @var array<string, AckConnection> */
    private static array $shared = [];
    private static bool $shutdownRegistered = false;

    /** @var resource|null */
    private $stream = null;
    /** @var array<int, string> unsettled frames by global index */
    private array $frames = [];
    private int $bytes = 0;
    private int $sent = 0;
    private int $settled = 0;
    private int $refused = 0;
    private int $connBase = 0;
    private int $connRefusedBase = 0;
    /** Global index of the next frame to write on this connection. */
    private int $written = 0;
    private string $in = '';
    private int $token = 0;
    private bool $boundLogged = false;
    private ?string $lastRefusal = null;
    private ?string $phpError = null;

    private function __construct(
        private string $path,
        private int $level,
        private float $timeout,
        private ?object $logger
    ) {
    }

    public static function get(string $path, int $level, float $timeout, ?object $logger): self
    {
        $key = $level . ':' . $path;
        if (!isset(self::$shared[$key])) {
            self::$shared[$key] = new self($path, $level, $timeout, $logger);
            if (!self::$shutdownRegistered) {
                self::$shutdownRegistered = true;
                register_shutdown_function(static function (): void {
                    foreach (self::$shared as $conn) {
                        $conn->flushAtExit();
                    }
                });
            }
        }
        return self::$shared[$key];
    }

    public function settled(): int
    {
        return $this->settled;
    }

    public function refused(): int
    {
        return $this->refused;
    }

    public function unsettled(): int
    {
        return $this->sent - $this->settled;
    }

    public function lastRefusal(): ?string
    {
        return $this->lastRefusal;
    }

    /**
     * Keeps frames (whole, encoded) until kahets settles them, writes them if connected (or
     * after connecting) and reads what kahets has said. False, with nothing kept, once the
     * bound is reached.
     *
     * @param list<string> $frames
     */
    public function keep(array $frames): bool
    {
        $this->poll();
        $bytes = 0;
        foreach ($frames as $f) {
            $bytes += strlen($f);
        }
        if ($this->unsettled() + count($frames) > self::MAX_FRAMES || $this->bytes + $bytes > self::MAX_BYTES) {
            if (!$this->boundLogged) {
                $this->boundLogged = true;
                Log::error($this->logger, sprintf('%d frames (%d bytes) sent to %s are not settled yet, the most this process keeps (%d frames, %d bytes); send() returns false until kahets settles some (call flush())', $this->unsettled(), $this->bytes, $this->path, self::MAX_FRAMES, self::MAX_BYTES));
            }
            return false;
        }
        foreach ($frames as $f) {
            $this->frames[$this->sent++] = $f;
        }
        $this->bytes += $bytes;
        if ($this->stream === null) {
            $this->connect();
        } else {
            $this->writePending();
        }
        $this->poll();
        return true;
    }

    /** Sends SYNC and waits until every frame kept so far is settled, at most $timeout seconds. */
    public function flush(float $timeout): bool
    {
        $target = $this->sent;
        $deadline = microtime(true) + $timeout;
        $synced = false;
        while ($this->settled < $target) {
            $left = $deadline - microtime(true);
            if ($left <= 0) {
                return false;
            }
            if ($this->stream === null) {
                if (!$this->connect()) {
                    usleep((int) min(20000, $left * 1e6));
                    continue;
                }
                $synced = false;
            }
            if (!$synced) {
                $synced = $this->write(Control::sync(++$this->token));
                continue;
            }
            $this->wait($left);
        }
        return true;
    }

    /** Reads what kahets sent, without blocking. */
    public function poll(): void
    {
        $stream = $this->stream;
        if ($stream === null) {
            return;
        }
        while (true) {
            $r = [$stream];
            $w = $e = null;
            if (@stream_select($r, $w, $e, 0) !== 1) {
                return;
            }
            if (!$this->readSome()) {
                return;
            }
        }
    }

    private function flushAtExit(): void
    {
        if ($this->unsettled() === 0) {
            $this->close();
            return;
        }
        // kahets down: say so at once rather than hold the end of every request for the
        // timeout (a web request's response waits for shutdown functions unless the
        // application called fastcgi_finish_request()).
        if ($this->stream === null && !$this->connect()) {
            Log::error($this->logger, sprintf('%d frame(s) sent to %s were not confirmed by kahets, which is not running; they are lost', $this->unsettled(), $this->path));
            return;
        }
        if (!$this->flush($this->timeout)) {
            Log::error($this->logger, sprintf('%d frame(s) sent to %s were not confirmed by kahets within %.3f s at exit; they may be lost', $this->unsettled(), $this->path, $this->timeout));
        }
        $this->close();
    }

    /** Waits up to $seconds for kahets to say something, and reads it. */
    private function wait(float $seconds): void
    {
        $stream = $this->stream;
        if ($stream === null) {
            return;
        }
        $r = [$stream];
        $w = $e = null;
        $sec = (int) floor($seconds);
        if (@stream_select($r, $w, $e, $sec, (int) (($seconds - $sec) * 1e6)) === 1) {
            $this->readSome();
        }
    }

    /** Reads one chunk and acts on its control frames; false when the connection is gone. */
    private function readSome(): bool
    {
        $stream = $this->stream;
        if ($stream === null) {
            return false;
        }
        $chunk = @fread($stream, 65536);
        if ($chunk === false || $chunk === '') {
            if ($chunk === false || feof($stream)) {
                $this->lost('kahets closed the connection');
                return false;
            }
            return true;
        }
        $this->in .= $chunk;
        $frames = Control::parse($this->in);
        if ($frames === null) {
            $this->lost('kahets sent bytes that are not control frames');
            return false;
        }
        foreach ($frames as $f) {
            switch ($f['op']) {
                case Control::ACK:
                case Control::SYNCED:
                    $this->settle($this->connBase + (int) $f['settled'], $this->connRefusedBase + (int) $f['refused']);
                    break;
                case Control::REFUSED:
                    $this->lastRefusal = sprintf('frame %d: %s', $this->connBase + (int) $f['index'], (string) $f['reason']);
                    break;
                case Control::CLOSING:
                    // Frames before `read` still reach their level; the rest were not read.
                    $this->settle($this->connBase + (int) $f['read'], $this->refused);
                    $this->lost(sprintf('kahets is closing the connection after %d frames', (int) $f['read']));
                    return false;
            }
        }
        return true;
    }

    private function settle(int $settled, int $refused): void
    {
        $settled = min($settled, $this->written); // never past what this connection carried
        for ($i = $this->settled; $i < $settled; $i++) {
            $this->bytes -= strlen($this->frames[$i]);
            unset($this->frames[$i]);
        }
        if ($settled > $this->settled) {
            $this->settled = $settled;
            $this->boundLogged = false;
        }
        if ($refused > $this->refused) {
            $this->refused = $refused;
        }
    }

    /** Forgets the connection; the frames past what is settled are written again on the next one. */
    private function lost(string $why): void
    {
        if ($this->unsettled() > 0) {
            Log::warning($this->logger, sprintf('%s (%s); %d unsettled frame(s) will be sent again', $why, $this->path, $this->unsettled()));
        }
        $this->close();
    }

    private function close(): void
    {
        $stream = $this->stream;
        $this->stream = null;
        $this->in = '';
        if (is_resource($stream)) {
            @fclose($stream);
        }
    }

    /** Opens a connection, says HELLO and writes every kept frame; false when kahets is not there. */
    private function connect(): bool
    {
        $errno = 0;
        $errstr = '';
        $this->phpError = null;
        set_error_handler(function (int $no, string $str): bool {
            $this->phpError = $str;
            return true;
        });
        try {
            $deadline = microtime(true) + $this->timeout;
            $pauseUs = 100;
            while (true) {
                $stream = stream_socket_client('unix://' . $this->path, $errno, $errstr, $this->timeout);
                // EAGAIN (11): the listen backlog is full; kahets is alive and behind on accepting.
                if ($stream !== false || $errno !== 11 || microtime(true) + $pauseUs / 1e6 > $deadline) {
                    break;
                }
                usleep($pauseUs);
                $pauseUs = min($pauseUs * 2, 10000);
            }
        } finally {
            restore_error_handler();
        }
        if ($stream === false) {
            Log::down($this->logger, $this->path, sprintf('cannot connect to %s (errno %d: %s); is kahets running? %d frame(s) are kept until it is (further failures are not logged)', $this->path, $errno, $errstr !== '' ? $errstr : ($this->phpError ?? 'unknown error'), $this->unsettled()));
            return false;
        }
        $sec = (int) floor($this->timeout);
        stream_set_blocking($stream, true);
        stream_set_timeout($stream, $sec, (int) (($this->timeout - $sec) * 1e6));
        Log::up($this->logger, $this->path);
        $this->stream = $stream;
        $this->connBase = $this->settled;
        $this->connRefusedBase = $this->refused;
        $this->written = $this->settled;
        if (!$this->write(Control::hello($this->level))) {
            return false;
        }
        return $this->writePending();
    }

    /** Writes the kept frames this connection has not carried yet. */
    private function writePending(): bool
    {
        if ($this->written >= $this->sent) {
            return true;
        }
        $data = '';
        for ($i = $this->written; $i < $this->sent; $i++) {
            $data .= $this->frames[$i];
        }
        $this->written = $this->sent;
        return $this->write($data);
    }

    /** Writes all of $data; on failure drops the connection (frames are sent again on the next). */
    private function write(string $data): bool
    {
        $stream = $this->stream;
        if ($stream === null) {
            return false;
        }
        $this->phpError = null;
        set_error_handler(function (int $no, string $str): bool {
            $this->phpError = $str;
            return true;
        });
        try {
            $len = strlen($data);
            $offset = 0;
            while ($offset < $len) {
                $n = fwrite($stream, $offset === 0 ? $data : substr($data, $offset));
                if ($n === false || $n === 0) {
                    $meta = stream_get_meta_data($stream);
                    $why = !empty($meta['timed_out']) ? sprintf('write timed out after %.3f s', $this->timeout) : ($this->phpError ?? 'fwrite() failed');
                    // kahets may have said CLOSING before it closed: read it first, so only
                    // the frames past `read` are sent again, not all those past the last ACK.
                    $this->poll();
                    // A partial frame may be in the connection: it can never be used again.
                    if ($this->stream !== null) {
                        $this->lost(sprintf('write to kahets failed: %s', $why));
                    }
                    return false;
                }
                $offset += $n;
            }
            return true;
        } catch (\Throwable $e) {
            $this->lost(sprintf('write to kahets failed: %s', $e->getMessage()));
            return false;
        } finally {
            restore_error_handler();
        }
    }
}
