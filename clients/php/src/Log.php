<?php

declare(strict_types=1);

namespace Kahets;

/**
 * Where the client's log lines go: a PSR-3 logger if the application gave one (any object with
 * warning() and error(); psr/log need not be installed), else error_log().
 *
 * "kahets is down" is logged once per process and socket path, not once per Client or per
 * send: a static flag does it for the CLI and long-running workers. Under PHP-FPM every
 * request starts with fresh static state, so with APCu the flag is also kept in APCu, keyed by
 * the worker's pid, for a minute; without APCu it is once per request.
 */
final class Log
{
    private const DOWN_TTL_SECONDS = 60;

    /** @var array<string, int> socket path => connect failures not logged since the one that was */
    private static array $down = [];

    public static function warning(?object $logger, string $message): void
    {
        self::write($logger, 'warning', $message);
    }

    public static function error(?object $logger, string $message): void
    {
        self::write($logger, 'error', $message);
    }

    /** A connect failure: logged unless this process already logged one for the path. */
    public static function down(?object $logger, string $path, string $message): void
    {
        if (isset(self::$down[$path])) {
            self::$down[$path]++;
            return;
        }
        self::$down[$path] = 0;
        if (function_exists('apcu_add') && !@apcu_add('kahets.down.' . getmypid() . '.' . $path, 1, self::DOWN_TTL_SECONDS)
            && function_exists('apcu_exists') && @apcu_exists('kahets.down.' . getmypid() . '.' . $path)) {
            return;
        }
        self::error($logger, $message);
    }

    /** A connection succeeded: if this process logged the path down, say it is back. */
    public static function up(?object $logger, string $path): void
    {
        if (!isset(self::$down[$path])) {
            return;
        }
        $suppressed = self::$down[$path];
        unset(self::$down[$path]);
        if (function_exists('apcu_delete')) {
            @apcu_delete('kahets.down.' . getmypid() . '.' . $path);
        }
        self::warning($logger, sprintf('connected to %s again; %d more connect failure(s) were not logged', $path, $suppressed));
    }

    private static function write(?object $logger, string $level, string $message): void
    {
        $line = 'kahets client: ' . $message;
        if ($logger !== null && method_exists($logger, $level)) {
            try {
                $logger->{$level}($line);
                return;
            } catch (\Throwable) {
                // a broken logger must not break the request; fall back to error_log()
            }
        }
        error_log($line);
    }
}
