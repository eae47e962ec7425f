<?php

declare(strict_types=1);

namespace Kahets;

/**
 * Control frames of acknowledged mode (docs/protocol.md in the kahets repository). A control
 * frame is a frame with bucketLen 0; integers are little-endian; u64 fields hold at most
 * 2^53 - 1, which PHP's 64-bit int carries exactly.
 *
 *     HELLO   = N=4  | 0x00 | 0x01 | version:u8 | level:u8        client -> kahets
 *     ACK     = N=18 | 0x00 | 0x02 | settled:u64 | refused:u64    kahets -> client
 *     SYNC    = N=10 | 0x00 | 0x03 | token:u64                    client -> kahets
 *     SYNCED  = N=26 | 0x00 | 0x04 | token:u64 | settled:u64 | refused:u64
 *     CLOSING = N=10 | 0x00 | 0x05 | read:u64
 *     REFUSED = N=11+reasonLen | 0x00 | 0x06 | index:u64 | reasonLen:u8 | reason
 */
final class Control
{
    public const HELLO = 1;
    public const ACK = 2;
    public const SYNC = 3;
    public const SYNCED = 4;
    public const CLOSING = 5;
    public const REFUSED = 6;

    public const VERSION = 1;
    public const ACCEPTED = 1;
    public const DURABLE = 2;

    /** The largest N of a control frame: a REFUSED with a 255-byte reason. */
    public const MAX_FRAME_BYTES = 266;

    public static function hello(int $level): string
    {
        return pack('VCCCC', 4, 0, self::HELLO, self::VERSION, $level);
    }

    public static function sync(int $token): string
    {
        return pack('VCCP', 10, 0, self::SYNC, $token);
    }

    /**
     * Takes the complete control frames off the front of $buffer (kahets' bytes so far) and
     * returns them as arrays ['op' => ..., fields...]; a partial frame stays in $buffer.
     * Returns null when the bytes are not kahets' control frames (the connection is unusable).
     *
     * @return list<array<string, int|string>>|null
     */
    public static function parse(string &$buffer): ?array
    {
        $out = [];
        $pos = 0;
        $len = strlen($buffer);
        while ($len - $pos >= 5) {
            $n = unpack('V', $buffer, $pos)[1];
            if ($n < 2 || $n > self::MAX_FRAME_BYTES || ord($buffer[$pos + 4]) !== 0) {
                return null;
            }
            if ($len - $pos < 4 + $n) {
                break;
            }
            $frame = self::decode(substr($buffer, $pos + 5, $n - 1));
            if ($frame === null) {
                return null;
            }
            $out[] = $frame;
            $pos += 4 + $n;
        }
        $buffer = (string) substr($buffer, $pos);
        return $out;
    }

    /** @return array<string, int|string>|null */
    private static function decode(string $body): ?array
    {
        $op = ord($body[0]);
        $len = strlen($body);
        switch ($op) {
            case self::ACK:
                if ($len !== 17) {
                    return null;
                }
                $f = unpack('Psettled/Prefused', $body, 1);
                break;
            case self::SYNCED:
                if ($len !== 25) {
                    return null;
                }
                $f = unpack('Ptoken/Psettled/Prefused', $body, 1);
                break;
            case self::CLOSING:
                if ($len !== 9) {
                    return null;
                }
                $f = unpack('Pread', $body, 1);
                break;
            case self::REFUSED:
                if ($len < 10 || $len !== 10 + ord($body[9])) {
                    return null;
                }
                $f = unpack('Pindex', $body, 1);
                $f['reason'] = (string) substr($body, 10);
                break;
            default:
                return null; // HELLO and SYNC are never sent by kahets
        }
        foreach ($f as $k => $v) {
            if (is_int($v) && $v < 0) {
                return null; // above 2^63: not a count kahets sends
            }
        }
        return ['op' => $op] + $f;
    }
}
