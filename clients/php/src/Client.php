<?php

declare(strict_types=1);

namespace Kahets;

/**
 * Client for the kahets sidecar (docs/protocol.md in the kahets repository). Plain PHP 8, no
 * extension.
 *
 *     $kahets = new \Kahets\Client('/run/kahets/kahets.sock');
 *     $kahets->send('orders', json_encode($order), (string) $order['id']);   // true or false
 *
 *     // acknowledged mode (needs a kahets with acknowledged mode):
 *     $kahets = new \Kahets\Client('/run/kahets/kahets.sock', ['ack' => 'durable', 'logger' => $psr3Logger]);
 *     $kahets->send('orders', $json);              // kept until kahets settles it
 *     $ok = $kahets->flush(1.0);                   // true once every frame sent so far is settled
 *     $kahets->lastRefused();                      // how many of those kahets refused
 *
 * Options (the second argument as an array): 'persistent' (bool, default true), 'timeout'
 * (float seconds, default 1.0), 'maxFrameBytes' (int), 'ack' (null | 'accepted' | 'durable'),
 * 'logger' (any object with PSR-3 warning() and error(); default error_log()). The old
 * positional form new Client($path, $persistent, $timeout, $maxFrameBytes) still works.
 *
 * Acknowledged mode is described in AckConnection: send() does not wait for kahets, keeps each
 * frame until it is settled (at most 10,000 frames or 8 MiB per process, then send() returns
 * false), and after kahets restarts sends again exactly the frames it had not taken. Without
 * 'ack' (the default) the client is fire-and-forget, byte for byte as it always was, as the
 * rest of this comment describes.
 *
 * Each frame on the UNIX socket is
 *     u32 little-endian N | u8 bucketLen | bucket | u8 keyLen | key | payload
 * where N counts everything after the length field. A key of null (or '') is sent as
 * keyLen 0, which kahets delivers as a null Kafka key.
 *
 * Persistent connection
 * ---------------------
 * With $persistent = true (the default) the socket is opened with STREAM_CLIENT_PERSISTENT,
 * so PHP keeps it open when the request ends and hands the same connection to the next
 * request that the same PHP-FPM worker serves: one connection per worker, not one per
 * request. Every Client in a worker that names the same socket path shares it.
 *
 * When PHP hands a persistent socket out again (that is, when stream_socket_client() runs
 * at the start of a later request), it first checks it: if kahets closed its end (kahets
 * restarted, or was stopped), PHP sees end-of-file and opens a fresh connection. There is
 * no check while a request already holds the socket, so if kahets dies during a request
 * (or between two sends of a long CLI script), the failure shows up only at the next
 * write: on a UNIX socket whose peer has closed, the write() fails at once with EPIPE
 * ("Broken pipe"), and fwrite() returns false (PHP raises an E_NOTICE, which this class
 * suppresses). The client then drops that connection, reconnects ONCE and writes the
 * frame(s) again, starting at the first frame that was not completely written (so frames
 * already accepted by the kernel are not sent twice). If the reconnect or the second write
 * fails too, send() returns false.
 *
 * SIGPIPE is not a concern: writing to a socket whose peer is gone would raise SIGPIPE, and
 * PHP writes with plain send() without MSG_NOSIGNAL; but the PHP CLI, PHP-FPM (its master
 * ignores SIGPIPE before forking the workers, which inherit that) and Apache (for mod_php)
 * all ignore SIGPIPE, so the process is not killed and the failure surfaces as EPIPE from
 * fwrite() as described above.
 *
 * What cannot be detected: kahets has no acknowledgement, so a frame that the kernel
 * accepted is "sent". If kahets is killed with frames still unread in the socket buffer,
 * they are lost, and send() had already returned true for them.
 *
 * Never fatal
 * -----------
 * send() and sendMany() never throw and never emit PHP warnings: when kahets is down (no
 * socket file, connection refused, broken pipe after a reconnect, write timeout) they return
 * false and log one line (error_log() or the logger). Connect failures are logged once per
 * process and socket path until a connection succeeds again (see Log), so neither a loop nor
 * many Client objects flood the log. Invalid input
 * (bad bucket name, key over 255 bytes, frame over $maxFrameBytes) also returns false and
 * is logged, and nothing is sent. A write that does not complete within $timeout seconds
 * (kahets alive but not reading) fails without a retry, and the connection is dropped,
 * because part of a frame may already be in it.
 *
 * A full listen backlog (kahets accepting more slowly than connections arrive, e.g. many
 * short-lived workers at once) makes a UNIX-socket connect fail at once with EAGAIN rather
 * than wait; connect() then retries with a growing pause (0.1 ms up to 10 ms) until
 * $timeout has passed, so a burst of connections waits its turn instead of being dropped.
 *
 * close() really closes the connection, persistent or not. Under PHP-FPM do NOT call it at
 * the end of each request, or the connection is no longer reused; just let the Client go.
 */
final class Client
{
    public const MAX_NAME_BYTES = 255;
    public const DEFAULT_MAX_FRAME_BYTES = 1048576;

    private const BUCKET_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-';
    private const U32_MAX = 0xFFFFFFFF;
    /** errno of a connect to a UNIX socket whose listen backlog is full (Linux). */
    private const EAGAIN = 11;

    /** @var resource|null */
    private $stream = null;
    private string $socketPath;
    private bool $persistent;
    private float $timeout;
    private int $maxFrameBytes;
    /** Last PHP warning/notice seen while the local error handler was installed. */
    private ?string $phpError = null;
    private ?object $logger = null;
    /** Acknowledged mode's shared connection; null when fire-and-forget. */
    private ?AckConnection $ack = null;
    /** refused() when the last flush() began, for lastRefused(). */
    private int $refusedBeforeFlush = 0;
    private int $lastRefused = 0;
    /** @var array<int, Client> persistent Clients with a frame partly written (see registerShutdownGuard()) */
    private static array $midWriteClients = [];
    private static bool $shutdownGuardRegistered = false;
    /** @var \Closure(int, string): bool */
    private \Closure $errorHandler;

    /**
     * @param string     $socketPath    path of kahets' UNIX socket (its SOCKET variable)
     * @param bool|array<string, mixed> $persistent keep one connection per PHP worker across
     *                                  requests; or the options array (see above)
     * @param float      $timeout       seconds allowed to connect, and for each blocked write
     * @param int        $maxFrameBytes the largest N (length field) kahets accepts: its MAX_FRAME_BYTES
     */
    public function __construct(
        string $socketPath = '/tmp/kahets.sock',
        bool|array $persistent = true,
        float $timeout = 1.0,
        int $maxFrameBytes = self::DEFAULT_MAX_FRAME_BYTES
    ) {
        $ack = null;
        if (is_array($persistent)) {
            $options = $persistent;
            $logger = $options['logger'] ?? null;
            if (is_object($logger) && method_exists($logger, 'warning') && method_exists($logger, 'error')) {
                $this->logger = $logger;
            } elseif ($logger !== null) {
                $this->log('the logger option needs an object with warning() and error() (PSR-3); using error_log()');
            }
            $unknown = array_diff(array_keys($options), ['persistent', 'timeout', 'maxFrameBytes', 'ack', 'logger']);
            if ($unknown !== []) {
                $this->log(sprintf('unknown option(s) %s ignored', implode(', ', $unknown)));
            }
            $persistent = (bool) ($options['persistent'] ?? true);
            $timeout = is_numeric($options['timeout'] ?? null) ? (float) $options['timeout'] : 1.0;
            $maxFrameBytes = is_int($options['maxFrameBytes'] ?? null) ? $options['maxFrameBytes'] : self::DEFAULT_MAX_FRAME_BYTES;
            $ack = $options['ack'] ?? null;
            if ($ack !== null && $ack !== 'accepted' && $ack !== 'durable') {
                $this->log(sprintf('invalid ack %s: null, \'accepted\' or \'durable\'; using \'durable\'', var_export($ack, true)));
                $ack = 'durable';
            }
        }
        $this->socketPath = $socketPath;
        $this->persistent = $persistent;
        if (!($timeout > 0)) {
            $this->log(sprintf('invalid timeout %s, using 1.0 s', var_export($timeout, true)));
            $timeout = 1.0;
        }
        $this->timeout = $timeout;
        if ($maxFrameBytes < 3) {
            $this->log(sprintf('invalid maxFrameBytes %d, using %d', $maxFrameBytes, self::DEFAULT_MAX_FRAME_BYTES));
            $maxFrameBytes = self::DEFAULT_MAX_FRAME_BYTES;
        }
        $this->maxFrameBytes = min($maxFrameBytes, self::U32_MAX);
        if ($ack !== null) {
            $this->ack = AckConnection::get($socketPath, $ack === 'durable' ? Control::DURABLE : Control::ACCEPTED, $this->timeout, $this->logger);
        }
        $this->errorHandler = function (int $errno, string $errstr): bool {
            $this->phpError = $errstr;
            return true; // handled: nothing reaches display_errors or the application's handler
        };
    }

    /**
     * Sends one message. Returns true once the whole frame is handed to the kernel, false
     * (after an error_log() line) when the input is invalid or kahets cannot be reached.
     */
    public function send(string $bucket, string $payload, ?string $key = null): bool
    {
        $frame = $this->encode($bucket, $payload, $key);
        if ($frame === null) {
            return false;
        }
        if ($this->ack !== null) {
            return $this->ack->keep([$frame]);
        }
        return $this->write($frame, [0]);
    }

    /**
     * Acknowledged mode: sends SYNC and waits, at most $timeoutSeconds, until every frame this
     * process sent so far is settled; false when they are not (kahets down, slow, or without
     * acknowledged mode). Fire-and-forget: true (there is nothing to wait for).
     */
    public function flush(float $timeoutSeconds = 1.0): bool
    {
        if ($this->ack === null) {
            return true;
        }
        $ok = $this->ack->flush($timeoutSeconds);
        $this->lastRefused = $this->ack->refused() - $this->refusedBeforeFlush;
        $this->refusedBeforeFlush = $this->ack->refused();
        return $ok;
    }

    /** How many frames kahets refused (invalid, unknown bucket, rejected topic…) that it reported during the last flush() or since the one before. */
    public function lastRefused(): int
    {
        return $this->lastRefused;
    }

    /** Acknowledged mode: the last REFUSED detail kahets sent, "frame <index>: <reason>" (index counted since the process's first frame), or null. */
    public function lastRefusal(): ?string
    {
        return $this->ack?->lastRefusal();
    }

    /** Acknowledged mode: frames this process sent that kahets settled so far (0 when fire-and-forget). */
    public function settled(): int
    {
        return $this->ack?->settled() ?? 0;
    }

    /** Acknowledged mode: of the settled frames, how many kahets refused (0 when fire-and-forget). */
    public function refused(): int
    {
        return $this->ack?->refused() ?? 0;
    }

    /** Acknowledged mode: frames sent and kept, not settled yet. */
    public function unsettled(): int
    {
        return $this->ack?->unsettled() ?? 0;
    }

    /**
     * Sends many messages with one fwrite(): each item is [bucket, payload] or
     * [bucket, payload, key]. All items are validated first; if any is invalid nothing is
     * sent and false is returned. An empty list sends nothing and returns true.
     *
     * @param array<int|string, mixed> $messages
     */
    public function sendMany(array $messages): bool
    {
        $data = '';
        $starts = [];
        $frames = [];
        foreach ($messages as $index => $m) {
            if (!is_array($m) || !array_key_exists(0, $m) || !array_key_exists(1, $m) || count($m) > 3
                || !is_string($m[0]) || !is_string($m[1])
                || (array_key_exists(2, $m) && $m[2] !== null && !is_string($m[2]))) {
                $this->log(sprintf('sendMany: message %s is not [string bucket, string payload, ?string key]; nothing sent', var_export($index, true)));
                return false;
            }
            $frame = $this->encode($m[0], $m[1], $m[2] ?? null);
            if ($frame === null) {
                $this->log(sprintf('sendMany: message %s is invalid; nothing sent', var_export($index, true)));
                return false;
            }
            $starts[] = strlen($data);
            $data .= $frame;
            $frames[] = $frame;
        }
        if ($data === '') {
            return true;
        }
        if ($this->ack !== null) {
            return $this->ack->keep($frames);
        }
        return $this->write($data, $starts);
    }

    /**
     * Closes the connection (the persistent one too). The next send() reconnects. In
     * acknowledged mode the connection is the process's, shared: close() flushes it instead
     * (at most the client's timeout), and it closes at exit.
     */
    public function close(): void
    {
        if ($this->ack !== null) {
            $this->flush($this->timeout);
            return;
        }
        $this->discard();
    }

    /** Builds one frame, or returns null (and logs) when kahets would reject it. */
    private function encode(string $bucket, string $payload, ?string $key): ?string
    {
        $bucketLen = strlen($bucket);
        if ($bucketLen < 1 || $bucketLen > self::MAX_NAME_BYTES
            || strspn($bucket, self::BUCKET_CHARS) !== $bucketLen
            || $bucket === '.' || $bucket === '..') {
            $this->log(sprintf('invalid bucket name %s: 1..255 bytes of [A-Za-z0-9._-], not "." or ".."', self::shorten($bucket)));
            return null;
        }
        $keyLen = $key === null ? 0 : strlen($key);
        if ($keyLen > self::MAX_NAME_BYTES) {
            $this->log(sprintf('key is %d bytes; at most %d', $keyLen, self::MAX_NAME_BYTES));
            return null;
        }
        $n = 2 + $bucketLen + $keyLen + strlen($payload);
        if ($n > $this->maxFrameBytes) {
            $this->log(sprintf('frame for bucket %s is %d bytes; at most %d (maxFrameBytes)', $bucket, $n, $this->maxFrameBytes));
            return null;
        }
        return pack('VC', $n, $bucketLen) . $bucket . chr($keyLen) . ($key ?? '') . $payload;
    }

    /**
     * Writes $data, whose frames begin at the offsets $starts, reconnecting once if the
     * connection turns out to be broken.
     *
     * @param list<int> $starts
     */
    private function write(string $data, array $starts): bool
    {
        $offset = 0;
        $firstError = null;
        for ($attempt = 1; $attempt <= 2; $attempt++) {
            if (!is_resource($this->stream) && !$this->connect()) {
                if ($attempt > 1) {
                    $this->log(sprintf('write to %s failed (%s) and reconnecting failed; not sent', $this->socketPath, $firstError ?? 'unknown error'));
                }
                return false;
            }
            $error = null;
            $written = $this->writeAll($data, $offset, $error);
            if ($written === strlen($data)) {
                if ($attempt > 1) {
                    $this->log(sprintf('reconnected to %s after a failed write (%s); frames sent again', $this->socketPath, $firstError ?? 'unknown error'));
                }
                return true;
            }
            // Part of a frame may be in the dead connection: it can never be used again.
            $this->discard();
            if ($error === 'timeout') {
                $this->log(sprintf('write to %s timed out after %.3f s; kahets is not reading; %d of %d bytes not sent', $this->socketPath, $this->timeout, strlen($data) - $written, strlen($data)));
                return false;
            }
            // Resume at the first frame that did not get completely into the kernel.
            $offset = 0;
            foreach ($starts as $start) {
                if ($start > $written) {
                    break;
                }
                $offset = $start;
            }
            if ($attempt === 1) {
                $firstError = $error;
            } else {
                $this->log(sprintf('write to %s failed again after reconnecting: %s; first error: %s', $this->socketPath, $error, $firstError ?? 'unknown error'));
            }
        }
        return false;
    }

    /**
     * Writes $data from $offset on until all of it is written or a write fails; returns the
     * offset reached (strlen($data) on success) and sets $error to a description otherwise.
     */
    private function writeAll(string $data, int $offset, ?string &$error): int
    {
        $len = strlen($data);
        $stream = $this->stream;
        if (!is_resource($stream)) {
            $error = 'not connected';
            return $offset;
        }
        $this->registerShutdownGuard();
        $this->setMidWrite(true);
        $this->phpError = null;
        set_error_handler($this->errorHandler);
        try {
            while ($offset < $len) {
                $n = fwrite($stream, $offset === 0 ? $data : substr($data, $offset));
                if ($n === false || $n === 0) {
                    $meta = stream_get_meta_data($stream);
                    $error = !empty($meta['timed_out']) ? 'timeout' : ($this->phpError ?? 'fwrite() failed');
                    return $offset;
                }
                $offset += $n;
            }
            $this->setMidWrite(false);
            return $offset;
        } catch (\Throwable $e) { // e.g. the shared persistent stream was closed by another Client
            $error = get_class($e) . ': ' . $e->getMessage();
            return $offset;
        } finally {
            restore_error_handler();
        }
    }

    private function connect(): bool
    {
        $flags = STREAM_CLIENT_CONNECT | ($this->persistent ? STREAM_CLIENT_PERSISTENT : 0);
        $errno = 0;
        $errstr = '';
        $this->phpError = null;
        set_error_handler($this->errorHandler);
        try {
            $deadline = microtime(true) + $this->timeout;
            $pauseUs = 100;
            while (true) {
                $errno = 0;
                $errstr = '';
                $stream = stream_socket_client('unix://' . $this->socketPath, $errno, $errstr, $this->timeout, $flags);
                // EAGAIN: the listen backlog is full; kahets is alive and behind on accepting.
                if ($stream !== false || $errno !== self::EAGAIN || microtime(true) + $pauseUs / 1e6 > $deadline) {
                    break;
                }
                usleep($pauseUs);
                $pauseUs = min($pauseUs * 2, 10000);
            }
            if ($stream !== false) {
                $seconds = (int) floor($this->timeout);
                stream_set_blocking($stream, true);
                stream_set_timeout($stream, $seconds, (int) (($this->timeout - $seconds) * 1e6));
            }
        } catch (\Throwable $e) {
            $stream = false;
            $errstr = get_class($e) . ': ' . $e->getMessage();
        } finally {
            restore_error_handler();
        }
        if ($stream === false) {
            $reason = $errstr !== '' ? $errstr : ($this->phpError ?? 'unknown error');
            Log::down($this->logger, $this->socketPath, sprintf('cannot connect to %s (errno %d: %s); is kahets running? messages are dropped until it is (further failures are not logged until a connection succeeds)', $this->socketPath, $errno, $reason));
            return false;
        }
        Log::up($this->logger, $this->socketPath);
        $this->stream = $stream;
        $this->setMidWrite(false);
        return true;
    }

    /** Closes the connection, even a persistent one, so no one writes after a partial frame. */
    private function discard(): void
    {
        $stream = $this->stream;
        $this->stream = null;
        $this->setMidWrite(false);
        if (is_resource($stream)) {
            set_error_handler($this->errorHandler);
            try {
                fclose($stream);
            } catch (\Throwable) {
                // already gone
            } finally {
                restore_error_handler();
            }
        }
    }

    /**
     * A fatal error (max_execution_time, memory limit) can end the request between two
     * partial fwrite()s. A persistent connection would then carry half a frame into the
     * next request and desynchronise kahets' decoder; the shutdown function closes such a
     * connection instead. One function per process, registered on the first write of a
     * persistent Client; it only knows the Clients that are mid-write at that moment, so a
     * script creating many Clients does not keep them all alive.
     */
    private function registerShutdownGuard(): void
    {
        if (self::$shutdownGuardRegistered || !$this->persistent) {
            return;
        }
        self::$shutdownGuardRegistered = true;
        register_shutdown_function(static function (): void {
            foreach (self::$midWriteClients as $client) {
                $client->discard();
            }
            self::$midWriteClients = [];
        });
    }

    private function setMidWrite(bool $midWrite): void
    {
        if (!$this->persistent) {
            return;
        }
        if ($midWrite) {
            self::$midWriteClients[spl_object_id($this)] = $this;
        } else {
            unset(self::$midWriteClients[spl_object_id($this)]);
        }
    }

    private static function shorten(string $s): string
    {
        $shown = strlen($s) > 64 ? substr($s, 0, 64) . '...' : $s;
        return '"' . addcslashes($shown, "\0..\37\"\\\177..\377") . '"';
    }

    private function log(string $message): void
    {
        Log::error($this->logger, $message);
    }
}
