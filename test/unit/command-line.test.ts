// The command-line parser: global options, per-command options, arguments, usage errors.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { commandUsage, parseCommandLine, usage, UsageError, type Command } from '../../src/command-line.ts'

const run = async (): Promise<number> => 0
const COMMANDS: Command[] = [
  { name: 'run', summary: 'start', run },
  { name: 'inspect', args: 'FILE...', minArgs: 1, summary: 'look', help: 'Reads files.', options: { dump: { type: 'boolean' } }, optionHelp: { dump: 'frames as JSON lines' }, run },
  { name: 'replay', args: 'FILE...', minArgs: 1, summary: 'send', options: { 'dry-run': { type: 'boolean' } }, run },
]

function parse (...argv: string[]): { name: string, args: string[], values: Record<string, unknown>, envFile?: string } {
  const p = parseCommandLine(argv, COMMANDS)
  assert.equal(p.kind, 'command')
  if (p.kind !== 'command') throw new Error('unreachable')
  return { name: p.command.name, args: p.args, values: { ...p.values }, envFile: p.envFile }
}

function usageError (...argv: string[]): string {
  try {
    parseCommandLine(argv, COMMANDS)
  } catch (err) {
    assert.ok(err instanceof UsageError, String(err))
    return err.message
  }
  assert.fail('expected a UsageError')
}

test('a command, its own options and its arguments, options anywhere; run by default', () => {
  assert.equal(parse().name, 'run')
  assert.deepEqual(parse('inspect', 'a.frames', '--dump', 'b.frames'), { name: 'inspect', args: ['a.frames', 'b.frames'], values: { dump: true }, envFile: undefined })
  assert.equal(parse('replay', '--dry-run', 'x').values['dry-run'], true)
  // -- ends the options: a file may start with a dash.
  assert.deepEqual(parse('replay', '--', '-odd-name').args, ['-odd-name'])
  const self = import.meta.filename
  assert.equal(parse('run', '--env-file', self).envFile, self)
  assert.equal(parseCommandLine(['--help'], COMMANDS).kind, 'help')
  assert.equal(parseCommandLine(['inspect', '-v'], COMMANDS).kind, 'version')
})

test('usage errors: unknown command or option, another command\'s option, missing or extra arguments, an unreadable --env-file', () => {
  assert.match(usageError('frobnicate'), /unknown command "frobnicate"/)
  assert.match(usageError('run', '--bogus'), /Unknown option '--bogus'/)
  assert.match(usageError('run', '--dump'), /--dump is not an option of run/)
  assert.match(usageError('inspect'), /inspect needs FILE\.\.\./)
  assert.match(usageError('run', 'extra'), /run: unexpected argument "extra"/)
  assert.match(usageError('run', '--env-file'), /argument missing/)
  assert.match(usageError('run', '--env-file', '/nonexistent/k.env'), /--env-file \/nonexistent\/k\.env: no such file/)
  assert.match(usageError('run', '--env-file', import.meta.dirname), /not a file/)
})

test('usage lists every command with its options', () => {
  const text = usage(COMMANDS)
  assert.match(text, /^Usage: kahets \[run\|inspect\|replay\]/)
  assert.match(text, /\n {6}--dump +frames as JSON lines\n/)
  assert.match(text, /--env-file PATH/)
  assert.match(text, /Exit status: 0 done; 1 failed .*; 2 bad command line\./)
})

test('--help after a command describes that command: what it does, its options and the global ones', () => {
  assert.deepEqual(parseCommandLine(['--help'], COMMANDS), { kind: 'help', command: null })
  const inspect = parseCommandLine(['inspect', '--help'], COMMANDS)
  assert.equal(inspect.kind === 'help' && inspect.command?.name, 'inspect')
  // Even where the command line would otherwise be wrong (no FILE yet).
  assert.equal(parseCommandLine(['-h', 'replay'], COMMANDS).kind, 'help')
  assert.match(usageError('frobnicate', '--help'), /unknown command "frobnicate"/)
  const text = commandUsage(COMMANDS[1]!)
  assert.match(text, /^Usage: kahets inspect FILE\.\.\. \[OPTIONS\]\n\nLook\.\n\nReads files\.\n\nOptions:\n/)
  assert.match(text, /\n {6}--dump +frames as JSON lines\n/)
  assert.match(text, /\n {6}--env-file PATH +read this env file/)
  assert.match(text, /\n {2}-h, --help +show this help/)
  assert.doesNotMatch(text, /dry-run/, 'another command\'s options are not listed')
})
