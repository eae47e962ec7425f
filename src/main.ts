// The kahets command line.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { EXIT_USAGE, UsageError, commandUsage, parseCommandLine, usage, type Command } from './command-line.ts'
import { bucketList, loadBucketsFile } from './config/buckets.ts'
import { describePayloadSchemas } from './config/payload-schema.ts'
import { loadEnv } from './config/env.ts'
import { ConfigError, KahetsError } from './errors.ts'
import { createLogger, logFormatFor } from './log.ts'
import { takeListenFds } from './listen-fds.ts'
import { PACKAGE_ROOT } from './package-root.ts'
import { startDaemon } from './daemon.ts'
import { describeReplay, replayFiles } from './replay-command.ts'
import { describeInspect, inspectFile } from './inspect-command.ts'
import { stat } from 'node:fs/promises'

function packageVersion (dir: string): string | null {
  try {
    return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return null
  }
}

function version (): string {
  return packageVersion(PACKAGE_ROOT) ?? 'unknown'
}

/** `kahets --version`: what a bug report needs (the Node that runs it, the Kafka clients in reach). */
function versionText (): string {
  const clients = (['@platformatic/kafka', 'kafkajs'] as const).map((name) => {
    const v = packageVersion(path.join(PACKAGE_ROOT, 'node_modules', name))
    return `${name} ${v ?? 'not installed'}`
  })
  return [`kahets ${version()}`, `node ${process.version}`, `kafka clients: ${clients.join(', ')}`].join('\n')
}

function printConfigError (err: ConfigError): void {
  // Under systemd (ExecStartPre=kahets check-config) each line is an error to journalctl -p err.
  const prefix = logFormatFor(2) === 'journal' ? '<3>' : ''
  process.stderr.write(`${prefix}kahets: invalid configuration (${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}):\n`)
  for (const p of err.problems) process.stderr.write(`${prefix}  ${p.path}: ${p.message}\n`)
}

// --- replay and inspect (issue 10) ---

/** Sizes of the files named, or a message naming the first that cannot be read. */
async function fileSizes (files: string[]): Promise<number | string> {
  let total = 0
  for (const f of files) {
    try {
      const st = await stat(f)
      if (!st.isFile()) return `${f}: not a regular file`
      total += st.size
    } catch (err) {
      return `${f}: ${(err as Error).message}`
    }
  }
  return total
}

function plural (n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

async function replay (files: string[], opts: { envFile: string | undefined, dryRun: boolean }): Promise<number> {
  const totalBytes = await fileSizes(files)
  if (typeof totalBytes === 'string') {
    process.stderr.write(`kahets: replay: ${totalBytes}\n`)
    return 1
  }
  let socket: string | null = null
  if (!opts.dryRun) {
    try {
      socket = loadEnv({ envFile: opts.envFile }).socket
    } catch (err) {
      if (err instanceof ConfigError) {
        printConfigError(err)
        return 1
      }
      throw err
    }
  }
  let torn = 0
  let damaged = 0
  let frames = 0
  let lastProgress = 0
  const progress = (p: { file: number, files: number, bytes: number, totalBytes: number, frames: number }, force = false): void => {
    const now = Date.now()
    if (!force && now - lastProgress < 1000) return
    lastProgress = now
    process.stderr.write(`replay: file ${p.file}/${p.files}, ${p.bytes} of ${p.totalBytes} bytes, ${plural(p.frames, 'frame')}\n`)
  }
  try {
    await replayFiles(socket, files, totalBytes, {
      progress,
      report: (r) => {
        torn += r.tornBytes > 0 ? 1 : 0
        damaged += r.whole ? 0 : 1
        frames += r.frames
        process.stdout.write(describeReplay(r, opts.dryRun) + '\n')
      },
    })
  } catch (err) {
    process.stderr.write(`kahets: replay failed: ${(err as Error).message}${socket === null ? '' : ` (is kahets running at ${socket}?)`}\n`)
    return 1
  }
  progress({ file: files.length, files: files.length, bytes: totalBytes, totalBytes, frames }, true)
  process.stdout.write(`${opts.dryRun ? 'verified' : 'replayed'} ${plural(files.length, 'file')}, ${plural(frames, 'frame')}${torn > 0 ? ` (${torn} with a torn tail)` : ''}${damaged > 0 ? `; ${damaged} DAMAGED (their damaged ranges were skipped)` : ''}\n`)
  return damaged > 0 ? 1 : 0
}

async function inspect (files: string[], opts: { dump: boolean }): Promise<number> {
  // With --dump stdout carries only JSON lines.
  const summary = opts.dump ? process.stderr : process.stdout
  let damaged = 0
  let failed = 0
  for (const file of files) {
    try {
      const r = await inspectFile(file, opts.dump ? (line) => { process.stdout.write(line + '\n') } : null)
      damaged += r.whole ? 0 : 1
      summary.write(describeInspect(r) + '\n')
    } catch (err) {
      failed++
      process.stderr.write(`kahets: inspect: ${file}: ${(err as Error).message}\n`)
    }
  }
  return damaged > 0 || failed > 0 ? 1 : 0
}

// --- end replay and inspect ---

// The commands, in the order --help lists them; a new command is one more entry.
const COMMANDS: readonly Command[] = [
  {
    name: 'run',
    summary: 'start the sidecar (the default)',
    help: [
      'Reads the env file (.env.{environment}.local, or --env-file) and the buckets file it',
      'names, listens on SOCKET, batches what clients send per bucket and delivers it to the',
      'streams. SIGTERM or SIGINT stop it cleanly (everything accepted is flushed); SIGHUP',
      're-reads the buckets file (an invalid one is logged and the running one kept). With',
      'METRICS set it serves /metrics, /livez, /readyz and /healthz',
      '(docs/operations-health.md).',
    ].join('\n'),
    run: async ({ envFile }) => await runOrCheck('run', envFile),
  },
  {
    name: 'check-config',
    summary: 'validate the env and the buckets file; print every error; exit 1 on any',
    help: [
      'Reads the configuration as `run` would, without starting anything, and lists every',
      'problem at once with where it is: a variable of the env file, or the JSON path of a',
      'buckets file entry (its shape, references between buckets and streams, file name',
      'templates, shared folders, CA files, payload schemas). Prints the warnings and a',
      'summary when it is valid. Sizes take B, KB, MB, GB, KiB, MiB or GiB, all 1024-based.',
    ].join('\n'),
    run: async ({ envFile }) => await runOrCheck('check-config', envFile),
  },
  {
    name: 'replay',
    args: 'FILE...',
    minArgs: 1,
    summary: 'send backup (spool) and frame files through the running kahets at SOCKET; verified frames only; exit 1 on damage',
    help: [
      'Each FILE may be a backup (spool) file, a file stream\'s frame file or a kahego .bckstm',
      'file (told apart by their first bytes). Every record is verified; damaged ranges are',
      'skipped and reported, never sent. Progress goes to stderr once a second, a line per',
      'file to stdout. SOCKET comes from the env file, as for `run`.',
    ].join('\n'),
    options: { 'dry-run': { type: 'boolean' } },
    optionHelp: { 'dry-run': 'read, verify and report; send nothing' },
    run: async ({ args, values, envFile }) => await replay(args, { envFile, dryRun: values['dry-run'] === true }),
  },
  {
    name: 'inspect',
    args: 'FILE...',
    minArgs: 1,
    summary: 'per file: format, records, buckets, bytes, times, damaged ranges; exit 1 on damage',
    help: [
      'Reads backup (spool) and frame files without sending anything: a summary per file,',
      'and with --dump every frame as a JSON line. Needs no configuration.',
    ].join('\n'),
    options: { dump: { type: 'boolean' } },
    optionHelp: { dump: 'write every frame as a JSON line to stdout (the summary goes to stderr); key and payload as UTF-8 text when valid, else base64' },
    run: async ({ args, values }) => await inspect(args, { dump: values.dump === true }),
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
    process.stdout.write((parsed.command === null ? usage(COMMANDS) : commandUsage(parsed.command)) + '\n')
    return 0
  }
  if (parsed.kind === 'version') {
    process.stdout.write(versionText() + '\n')
    return 0
  }
  return await parsed.command.run(parsed)
}

async function runOrCheck (command: 'run' | 'check-config', envFile: string | undefined): Promise<number> {
  let env, buckets
  let listenFds: number[]
  try {
    // Read (and removed from the environment) first, whatever the command: no process kahets
    // starts may inherit them. Only `run` uses the socket.
    listenFds = takeListenFds()
    if (listenFds.length > 1) throw new ConfigError([{ path: 'LISTEN_FDS', message: `kahets serves one socket; ${listenFds.length} were passed (give kahets.socket one ListenStream)` }])
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
    for (const line of describePayloadSchemas(bucketList(buckets))) process.stdout.write(`${line}\n`)
    process.stdout.write(`configuration OK: ${env.envFile ?? '(no env file; defaults and process environment)'}, ${env.bucketsFile}: ${buckets.streams.size} streams, ${buckets.buckets.size} buckets${buckets.defaultBucket === null ? '' : ', defaultBucket'}\n`)
    return 0
  }

  const log = createLogger(env.logLevel)
  // Handlers go in before the daemon starts: a signal that finds no handler kills the process
  // (Node installs one only with process.on), and systemd or a test may send SIGTERM as soon as
  // the socket answers. One that arrives while starting is acted on once started.
  let onSignal = (signal: NodeJS.Signals): void => { early ??= signal }
  let early: NodeJS.Signals | null = null
  let onHangup = (): void => { log.info('SIGHUP while starting: the buckets file being loaded is already the newest') }
  process.on('SIGTERM', (s) => { onSignal(s) })
  process.on('SIGINT', (s) => { onSignal(s) })
  process.on('SIGHUP', () => { onHangup() })
  let daemon
  try {
    daemon = await startDaemon({ env, buckets, log, ...(listenFds.length === 1 ? { listenFd: listenFds[0] } : {}) })
  } catch (err) {
    if (err instanceof KahetsError) {
      log.fatal({ code: err.code }, err.message)
      process.stderr.write(`kahets: ${err.message}\n`)
      return 1
    }
    throw err
  }
  log.info({ env: env.envFile, buckets: env.bucketsFile, maxMemory: env.maxMemory, version: version() }, 'kahets started')

  const running = daemon
  return await new Promise<number>((resolve) => {
    let signals = 0
    onSignal = (signal: NodeJS.Signals): void => {
      if (++signals > 1) {
        log.warn({ signal }, 'already stopping; send SIGKILL to abort (loses unflushed messages)')
        return
      }
      log.info({ signal }, 'signal received')
      running.stop().then(() => resolve(0), (err: unknown) => {
        log.fatal({ err }, 'shutdown failed')
        resolve(1)
      })
    }
    onHangup = (): void => {
      log.info({ file: env.bucketsFile }, 'SIGHUP: reloading the buckets file')
      running.reload().catch((err: unknown) => { log.error({ err }, 'reload failed') })
    }
    if (early !== null) onSignal(early)
  })
}

main(process.argv.slice(2)).then((code) => { process.exit(code) }, (err: unknown) => {
  process.stderr.write(`kahets: fatal: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exit(1)
})
