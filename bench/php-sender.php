<?php
// PHP client throughput from one `php` process, the way PHP-FPM uses it: every message is
// one "request" that makes its own \Kahets\Client and sends once.
//
//   persistent      new Client(socket) per message; STREAM_CLIENT_PERSISTENT hands every
//                   one of them the same connection (one per FPM worker in production)
//   non-persistent  new Client(socket, false) per message, sent, then close(): one connect
//                   and one close per request
//   ack-accepted    new Client(socket, ['ack' => 'accepted']) per message (issue 11); every
//   ack-durable     Client of the process shares one acknowledged connection (clients/php
//                   AckConnection). The run ends with flush(): its time includes waiting until
//                   kahets settled every frame. A send() that returns false (the client keeps
//                   10,000 frames / 8 MiB unsettled at most) is followed by flush() and retried
//                   once, as an application that must not lose it would do.
//
// Usage: php bench/php-sender.php SOCKET BUCKET COUNT SIZE persistent|non-persistent|ack-accepted|ack-durable
// Prints one JSON line: sent, accepted, seconds, cpu_seconds, max_rss_kb (ack: also settled, refused,
// unsettled, and bound_flushes: how often send() met the client's bound and flush() ran first).

declare(strict_types=1);

require __DIR__ . '/../clients/php/Kahets.php';

[$self, $socket, $bucket, $count, $size, $mode] = $argv + [null, null, null, null, null, null];
if (!in_array($mode, ['persistent', 'non-persistent', 'ack-accepted', 'ack-durable'], true)) {
    fwrite(STDERR, "usage: php $self SOCKET BUCKET COUNT SIZE persistent|non-persistent|ack-accepted|ack-durable\n");
    exit(2);
}
$count = (int) $count;
$size = (int) $size;
$persistent = $mode === 'persistent';
$ack = str_starts_with($mode, 'ack-') ? substr($mode, 4) : null;

// Random upper-case letters, as the other load generators send; 1024 distinct payloads
// are plenty here: a file stream does not compress.
$payloads = [];
for ($i = 0; $i < 1024; $i++) {
    $p = '';
    for ($j = 0; $j < $size; $j++) {
        $p .= chr(65 + mt_rand(0, 25));
    }
    $payloads[] = $p;
}

$accepted = 0;
$settled = true;
$boundFlushes = 0;
$client = null;
$r0 = getrusage();
$t0 = hrtime(true);
for ($i = 0; $i < $count; $i++) {
    if ($ack !== null) {
        $client = new \Kahets\Client($socket, ['ack' => $ack]);
        if ($client->send($bucket, $payloads[$i & 1023])) {
            $accepted++;
        } else {
            $boundFlushes++;
            if ($client->flush(10.0) && $client->send($bucket, $payloads[$i & 1023])) {
                $accepted++;
            }
        }
        continue;
    }
    $client = new \Kahets\Client($socket, $persistent);
    if ($client->send($bucket, $payloads[$i & 1023])) {
        $accepted++;
    }
    if (!$persistent) {
        $client->close();
    }
}
if ($ack !== null && $client !== null) {
    $settled = $client->flush(60.0);
}
$seconds = (hrtime(true) - $t0) / 1e9;
$r1 = getrusage();
$cpu = ($r1['ru_utime.tv_sec'] - $r0['ru_utime.tv_sec']) + ($r1['ru_utime.tv_usec'] - $r0['ru_utime.tv_usec']) / 1e6
     + ($r1['ru_stime.tv_sec'] - $r0['ru_stime.tv_sec']) + ($r1['ru_stime.tv_usec'] - $r0['ru_stime.tv_usec']) / 1e6;

echo json_encode([
    'sent' => $count,
    'accepted' => $accepted,
    'seconds' => $seconds,
    'cpu_seconds' => $cpu,
    'max_rss_kb' => $r1['ru_maxrss'],
] + ($ack === null || $client === null ? [] : ['settled' => $settled, 'refused' => $client->refused(), 'unsettled' => $client->unsettled(), 'bound_flushes' => $boundFlushes])), "\n";
exit($accepted === $count && $settled ? 0 : 1);
