<?php

// Sends COUNT keyed messages to the bucket "example" through kahets and reports how many
// were accepted. Usage: php clients/php/example.php [SOCKET] [COUNT]
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

$kahets = new \Kahets\Client($socket);
$accepted = 0;
for ($i = 0; $i < $count; $i++) {
    $payload = json_encode(['n' => $i, 'at' => microtime(true), 'host' => gethostname()]) ?: '{}';
    if ($kahets->send('example', $payload, 'key-' . ($i % 16))) {
        $accepted++;
    }
}

printf("%d of %d messages accepted by kahets at %s\n", $accepted, $count, $socket);
exit($accepted === $count ? 0 : 1);
