<?php

// Sends COUNT keyed messages to the bucket "example" through kahets and reports how many
// were accepted. Usage: php clients/php/example.php [SOCKET] [COUNT] [accepted|durable]
// With a third argument the client runs in acknowledged mode (a kahets with acknowledged
// mode needed) and waits for kahets to settle the messages.
// Exits 1 if any send failed (kahets down, for instance); the reasons are in the error log
// (stderr for the CLI).

declare(strict_types=1);

require __DIR__ . '/Kahets.php';

$socket = $argv[1] ?? (getenv('SOCKET') ?: '/tmp/kahets.sock');
$count = isset($argv[2]) ? (int) $argv[2] : 10;
if ($count < 0) {
    fwrite(STDERR, "usage: php {$argv[0]} [SOCKET] [COUNT]\n");
    exit(2);
}

$ack = $argv[3] ?? null;
$kahets = new \Kahets\Client($socket, ['ack' => $ack]);
$accepted = 0;
for ($i = 0; $i < $count; $i++) {
    $payload = json_encode(['n' => $i, 'at' => microtime(true), 'host' => gethostname()]) ?: '{}';
    if ($kahets->send('example', $payload, 'key-' . ($i % 16))) {
        $accepted++;
    }
}

printf("%d of %d messages accepted by kahets at %s\n", $accepted, $count, $socket);
if ($ack !== null) {
    $settled = $kahets->flush(5.0);
    printf("%s: %d settled, %d refused\n", $settled ? 'all settled' : 'NOT all settled', $kahets->settled(), $kahets->refused());
    exit($accepted === $count && $settled && $kahets->refused() === 0 ? 0 : 1);
}
exit($accepted === $count ? 0 : 1);
