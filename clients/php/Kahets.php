<?php

// The kahets PHP client as one include, for code that does not use Composer:
//     require '/opt/kahets/clients/php/Kahets.php';
// With Composer, require the package (composer.json, PSR-4 Kahets\ => src/) instead.

declare(strict_types=1);

require_once __DIR__ . '/src/Log.php';
require_once __DIR__ . '/src/Control.php';
require_once __DIR__ . '/src/AckConnection.php';
require_once __DIR__ . '/src/Client.php';
