// The kahets command line.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { EXIT_USAGE, UsageError, parseCommandLine, usage, type Command } from './command-line.ts'
import { loadBucketsFile } from './config/buckets.ts'
import { loadEnv } from './config/env.ts'
import { ConfigError, KahetsError } from './errors.ts'
import { createLogger } from './log.ts'
import { PACKAGE_ROOT } from './package-root.ts'
import { startDaemon } from './daemon.ts'
import { replayFiles } from './replay-command.ts'

function version (): string {
  const pkg = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }
  return pkg.version
}

function printConfigError (err: ConfigError): void {
  process.stderr.write(`kahets: invalid configuration (${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}):\n`)
  for (const p of err.problems) process.stderr.write(`  ${p.path}: ${p.message}\n`)
}

async function replay (files: string[], envFile: string | undefined): Promise<number> {
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

// The commands, in the order --help lists them; a new command is one more entry.
const COMMANDS: readonly Command[] = [
  { name: 'run', summary: 'start the sidecar (the default)', run: async ({ envFile }) => await runOrCheck('run', envFile) },
  { name: 'check-config', summary: 'validate the env and the buckets file; print every error; exit 1 on any', run: async ({ envFile }) => await runOrCheck('check-config', envFile) },
  {
    name: 'replay',
    args: 'FILE...',
    minArgs: 1,
    summary: 'send frame files through the running kahets at SOCKET (torn tails skipped)',
    run: async ({ args, envFile }) => await replay(args, envFile),
  },
]

async function main (argv: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseCommandLine(argv, COMMANDS)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`kahets: ${err.message}\n\n${usage(COMMANDS)}\n`)
    return EXIT_USAGE
  }
  if (parsed.kind === 'help') {
    process.stdout.write(usage(COMMANDS) + '\n')
    return 0
  }
  if (parsed.kind === 'version') {
    process.stdout.write(`kahets ${version()}\n`)
    return 0
  }
  return await parsed.command.run(parsed)
}

async function runOrCheck (command: 'run' | 'check-config', envFile: string | undefined): Promise<number> {
  let env, buckets
  try {
    env = loadEnv({ envFile })
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
