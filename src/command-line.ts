// The kahets command line: `kahets [COMMAND] [ARGS…] [OPTIONS]`. kahets parses every flag
// itself (bin/kahets ends Node's own options with `--`, so Node never reads --env-file:
// issue 10, finding 10). Each command declares its own options beside the global ones;
// adding a command is adding one entry to the table main.ts passes in.
//
// Exit codes: 0 done; 1 the command failed (invalid configuration, kahets not running…);
// 2 the command line itself is wrong (unknown command or option, a missing argument, an
// --env-file that cannot be read).
import { accessSync, constants, statSync } from 'node:fs'
import { parseArgs, type ParseArgsConfig } from 'node:util'

export type OptionSpecs = NonNullable<ParseArgsConfig['options']>
export type OptionValues = Record<string, string | boolean | undefined>

export interface Command {
  readonly name: string
  /** Its arguments as the usage text shows them, e.g. "FILE...". */
  readonly args?: string
  /** At least this many arguments (default 0); at most `maxArgs` (default: as many as min, or unlimited when args is set). */
  readonly minArgs?: number
  readonly maxArgs?: number
  readonly summary: string
  /** What `kahets COMMAND --help` says about it, beside the summary: lines of at most 80 characters. */
  readonly help?: string
  /** Options of this command only, with their help lines. */
  readonly options?: OptionSpecs
  readonly optionHelp?: Readonly<Record<string, string>>
  /** How --help names a string option's value (default VALUE). */
  readonly optionValue?: Readonly<Record<string, string>>
  run (ctx: { args: string[], values: OptionValues, envFile: string | undefined }): Promise<number>
}

export const EXIT_USAGE = 2

/** A command line kahets cannot act on: printed with the usage, exit 2. */
export class UsageError extends Error {}

export const GLOBAL_OPTIONS = {
  'env-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const satisfies OptionSpecs

const GLOBAL_HELP: Record<keyof typeof GLOBAL_OPTIONS, string> = {
  'env-file': 'read this env file instead of .env.{environment}.local',
  help: 'show this help',
  version: 'print the version',
}

export type Parsed =
  /** --help: of one command when one is named, else of kahets. */
  | { readonly kind: 'help', readonly command: Command | null }
  | { readonly kind: 'version' }
  | { readonly kind: 'command', readonly command: Command, readonly args: string[], readonly values: OptionValues, readonly envFile: string | undefined }

function flag (name: string, spec: OptionSpecs[string], valueName = 'VALUE'): string {
  return `${spec.short === undefined ? '' : `-${spec.short}, `}--${name}${spec.type === 'string' ? ` ${valueName}` : ''}`
}

export function usage (commands: readonly Command[]): string {
  const rows: Array<[string, string]> = []
  for (const c of commands) {
    rows.push([`  ${c.name}${c.args === undefined ? '' : ` ${c.args}`}`, c.summary])
    for (const [name, spec] of Object.entries(c.options ?? {})) rows.push([`      ${flag(name, spec, c.optionValue?.[name])}`, c.optionHelp?.[name] ?? ''])
  }
  const options: Array<[string, string]> = Object.entries(GLOBAL_OPTIONS).map(([name, spec]) => [`  ${'short' in spec ? '' : '    '}${flag(name, spec, 'PATH')}`, GLOBAL_HELP[name as keyof typeof GLOBAL_OPTIONS]])
  const width = Math.max(...[...rows, ...options].map(([left]) => left.length)) + 2
  const render = (r: Array<[string, string]>): string[] => r.map(([left, right]) => left.padEnd(width) + right)
  return [
    `Usage: kahets [${commands.map((c) => c.name).join('|')}] [ARGS...] [OPTIONS]`,
    '', 'Commands:', ...render(rows),
    '', 'Options:', ...render(options),
    '', 'Exit status: 0 done; 1 failed (e.g. invalid configuration); 2 bad command line.',
    'Environment: environment (default dev) picks .env.{environment}.local; see docs/configuration.md for',
    'every variable (SOCKET, BUCKETS_FILE, MAXMEMORY, LOG_LEVEL, ...).',
    '`kahets COMMAND --help` describes one command.',
  ].join('\n')
}

/** `kahets COMMAND --help`: what it does, its arguments, its options and the global ones. */
export function commandUsage (c: Command): string {
  const rows: Array<[string, string]> = Object.entries(c.options ?? {}).map(([name, spec]) => [`  ${'short' in spec ? '' : '    '}${flag(name, spec, c.optionValue?.[name])}`, c.optionHelp?.[name] ?? ''])
  for (const [name, spec] of Object.entries(GLOBAL_OPTIONS)) rows.push([`  ${'short' in spec ? '' : '    '}${flag(name, spec, 'PATH')}`, GLOBAL_HELP[name as keyof typeof GLOBAL_OPTIONS]])
  const width = Math.max(...rows.map(([left]) => left.length)) + 2
  return [
    `Usage: kahets ${c.name}${c.args === undefined ? '' : ` ${c.args}`} [OPTIONS]`,
    '', `${c.summary.charAt(0).toUpperCase()}${c.summary.slice(1)}.`,
    ...(c.help === undefined ? [] : ['', c.help]),
    '', 'Options:', ...rows.map(([left, right]) => left.padEnd(width) + right),
    '', 'Exit status: 0 done; 1 failed (e.g. invalid configuration); 2 bad command line.',
  ].join('\n')
}

/**
 * Parses argv against the global options and the command's own; the first argument that
 * is not an option names the command (`run` when there is none). Throws UsageError.
 */
export function parseCommandLine (argv: readonly string[], commands: readonly Command[]): Parsed {
  const all: OptionSpecs = { ...GLOBAL_OPTIONS }
  for (const c of commands) Object.assign(all, c.options)
  let parsed
  try {
    parsed = parseArgs({ args: [...argv], options: all, allowPositionals: true, strict: true, tokens: true })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const { values, positionals, tokens } = parsed
  const named = positionals[0]
  const command = commands.find((c) => c.name === (named ?? 'run'))
  if (values.help === true) {
    if (named !== undefined && command === undefined) throw new UsageError(`unknown command ${JSON.stringify(named)}`)
    return { kind: 'help', command: named === undefined ? null : command! }
  }
  if (values.version === true) return { kind: 'version' }
  if (command === undefined) throw new UsageError(`unknown command ${JSON.stringify(named)}`)
  for (const t of tokens) {
    if (t.kind === 'option' && !(t.name in GLOBAL_OPTIONS) && !(t.name in (command.options ?? {}))) {
      throw new UsageError(`${t.rawName} is not an option of ${command.name}`)
    }
  }
  const args = positionals.slice(1)
  const min = command.minArgs ?? 0
  const max = command.maxArgs ?? (command.args === undefined ? min : Infinity)
  if (args.length < min) throw new UsageError(`${command.name} needs ${command.args ?? `${min} argument(s)`}`)
  if (args.length > max) throw new UsageError(`${command.name}: unexpected argument ${JSON.stringify(args[max])}`)
  const envFile = values['env-file'] as string | undefined
  if (envFile !== undefined) checkEnvFile(envFile)
  return { kind: 'command', command, args, values: values as OptionValues, envFile }
}

/** --env-file names a file kahets can read, or the command line is wrong. */
function checkEnvFile (file: string): void {
  if (file === '') throw new UsageError('--env-file needs a path')
  try {
    if (!statSync(file).isFile()) throw new UsageError(`--env-file ${file}: not a file`)
    accessSync(file, constants.R_OK)
  } catch (err) {
    if (err instanceof UsageError) throw err
    const code = (err as NodeJS.ErrnoException).code
    throw new UsageError(`--env-file ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`)
  }
}
