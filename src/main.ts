// The kahets command line.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { loadBucketsFile } from './config/buckets.ts'
import { loadEnv } from './config/env.ts'
import { ConfigError, KahetsError } from './errors.ts'
import { createLogger } from './log.ts'
import { PACKAGE_ROOT } from './package-root.ts'
import { startDaemon } from './daemon.ts'
import { replayFiles } from './replay-command.ts'

const USAGE = `Usage: kahets [run|check-config|replay FILE...] [options]

Commands:
  run               start the sidecar (default)
  check-config      validate the env and the buckets file; print every error; exit 1 on any
  replay FILE...    send frame files (backup or file-stream files) through the running
                    kahets at SOCKET; torn tails are reported and skipped

Options:
  --env-file PATH   read this env file instead of .env.{environment}.local
  -h, --help        show this help
  -v, --version     print the version

Environment: environment (default dev) picks .env.{environment}.local; see README.md for
every variable (SOCKET, BUCKETS_FILE, MAXMEMORY, LOG_LEVEL, ...).`

function version (): string {
  const pkg = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }
  return pkg.version
}

function printConfigError (err: ConfigError): void {
  process.stderr.write(`kahets: invalid configuration (${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}):\n`)
  for (const p of err.problems) process.stderr.write(`  ${p.path}: ${p.message}\n`)
}

async function replay (files: string[], envFile: string | undefined): Promise<number> {
  if (files.length === 0) {
    process.stderr.write(`kahets: replay needs at least one FILE\n\n${USAGE}\n`)
    return 2
  }
  let env
  try {
    env = loadEnv({ envFile })
  } catch (err) {
    if (err instanceof ConfigError) {
      printConfigError(err)
      return 1
    }
    throw err
  }
  let torn = 0
  try {
    await replayFiles(env.socket, files, (r) => {
      torn += r.tornBytes > 0 ? 1 : 0
      process.stdout.write(`${r.file}: ${r.frames} frames sent${r.tornBytes > 0 ? `, torn tail of ${r.tornBytes} bytes skipped` : ''}${r.invalid > 0 ? `, ${r.invalid} invalid frames skipped` : ''}\n`)
    })
  } catch (err) {
    process.stderr.write(`kahets: replay failed: ${(err as Error).message} (is kahets running at ${env.socket}?)\n`)
    return 1
  }
  process.stdout.write(`replayed ${files.length} file${files.length === 1 ? '' : 's'}${torn > 0 ? ` (${torn} with a torn tail)` : ''}\n`)
  return 0
}

async function main (argv: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'env-file': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    })
  } catch (err) {
    process.stderr.write(`kahets: ${(err as Error).message}\n\n${USAGE}\n`)
    return 2
  }
  const { values, positionals } = parsed
  if (values.help === true) {
    process.stdout.write(USAGE + '\n')
    return 0
  }
  if (values.version === true) {
    process.stdout.write(`kahets ${version()}\n`)
    return 0
  }
  const command = positionals[0] ?? 'run'
  if (command === 'replay') return await replay(positionals.slice(1), values['env-file'])
  if (!['run', 'check-config'].includes(command) || positionals.length > 1) {
    process.stderr.write(`kahets: unknown command ${JSON.stringify(positionals.join(' '))}\n\n${USAGE}\n`)
    return 2
  }

  let env, buckets
  try {
    env = loadEnv({ envFile: values['env-file'] })
    buckets = loadBucketsFile(env.bucketsFile)
  } catch (err) {
    if (err instanceof ConfigError) {
      printConfigError(err)
      return 1
    }
    throw err
  }

  if (command === 'check-config') {
    for (const w of buckets.warnings) process.stdout.write(`warning: ${w}\n`)
    process.stdout.write(`configuration OK: ${env.envFile ?? '(no env file; defaults and process environment)'}, ${env.bucketsFile}: ${buckets.streams.size} streams, ${buckets.buckets.size} buckets${buckets.defaultBucket === null ? '' : ', defaultBucket'}\n`)
    return 0
  }

  // MAXCPUS (kahego's GOMAXPROCS) sizes libuv's thread pool, which runs file writes and
  // fsync; JavaScript itself runs on one thread.
  process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, env.maxCpus))
  const log = createLogger(env.logLevel)
  let daemon
  try {
    daemon = await startDaemon({ env, buckets, log })
  } catch (err) {
    if (err instanceof KahetsError) {
      log.fatal({ code: err.code }, err.message)
      process.stderr.write(`kahets: ${err.message}\n`)
      return 1
    }
    throw err
  }
  log.info({ env: env.envFile, buckets: env.bucketsFile, maxMemory: env.maxMemory, version: version() }, 'kahets started')

  return await new Promise<number>((resolve) => {
    let signals = 0
    const onSignal = (signal: NodeJS.Signals): void => {
      if (++signals > 1) {
        log.warn({ signal }, 'already stopping; send SIGKILL to abort (loses unflushed messages)')
        return
      }
      log.info({ signal }, 'signal received')
      daemon.stop().then(() => resolve(0), (err: unknown) => {
        log.fatal({ err }, 'shutdown failed')
        resolve(1)
      })
    }
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
    process.on('SIGHUP', () => {
      log.info({ file: env.bucketsFile }, 'SIGHUP: reloading the buckets file')
      daemon.reload().catch((err: unknown) => { log.error({ err }, 'reload failed') })
    })
  })
}

main(process.argv.slice(2)).then((code) => { process.exit(code) }, (err: unknown) => {
  process.stderr.write(`kahets: fatal: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exit(1)
})
