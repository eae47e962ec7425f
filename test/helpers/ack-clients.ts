// Drivers that run each client (Node in-process, PHP and Python as real processes) in
// acknowledged mode against a socket path: the unit tests point them at the fake kahets of
// ack-server.ts, and an integration test can point them at a real kahets (restarting it in
// `midway`, between the two halves of the messages).
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { connect } from '../../clients/node/index.ts'

export interface AckMessage {
  bucket: string
  payload: string
  key?: string | null
}

export interface AckRunOptions {
  ack: 'accepted' | 'durable'
  messages: AckMessage[]
  /** Runs after the first half of the messages was sent and before the second half. */
  midway?: () => Promise<void>
  /** flush() timeout, in ms. */
  flushTimeoutMs?: number
}

export interface AckRunResult {
  /** flush() reported everything settled in time. */
  ok: boolean
  settled: number
  refused: number
  /** What the client logged (PHP and Python: stderr). */
  log: string
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const PHP_CLIENT = path.join(ROOT, 'clients/php/Kahets.php')
export const PYTHON_CLIENT_DIR = path.join(ROOT, 'clients/python')

export async function runNodeAck (socketPath: string, opts: AckRunOptions): Promise<AckRunResult> {
  const lines: string[] = []
  const client = await connect(socketPath, { ack: opts.ack, log: (m) => lines.push(m) })
  const half = Math.floor(opts.messages.length / 2)
  const sendAll = async (msgs: AckMessage[]): Promise<void> => {
    for (const m of msgs) if (!client.send(m.bucket, m.payload, m.key)) await client.drain()
  }
  await sendAll(opts.messages.slice(0, half))
  if (opts.midway !== undefined) {
    await client.flush(opts.flushTimeoutMs ?? 10_000).catch(() => {})
    await opts.midway()
  }
  await sendAll(opts.messages.slice(half))
  try {
    const s = await client.close(opts.flushTimeoutMs ?? 10_000)
    return { ok: true, ...s, log: lines.join('\n') }
  } catch {
    return { ok: false, ...client.settlement, log: lines.join('\n') }
  }
}

/**
 * Runs `interpreter script dataFile` where the script sends the first half of the messages,
 * prints "half", waits for a line on stdin, sends the rest, flushes and prints
 * {"ok":…,"settled":…,"refused":…}.
 */
async function runScript (interpreter: string[], script: string, socketPath: string, opts: AckRunOptions): Promise<AckRunResult> {
  const dataFile = `${script}.json`
  fs.writeFileSync(dataFile, JSON.stringify({ socket: socketPath, ack: opts.ack, messages: opts.messages, timeout: (opts.flushTimeoutMs ?? 10_000) / 1000 }))
  const child = spawn(interpreter[0]!, [...interpreter.slice(1), script, dataFile], { stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8')
  child.stdin.on('error', () => {}) // a child that died early: its exit code tells
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  const exit = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', resolve)
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (s: string) => {
        stdout += s
        if (stdout.includes('half\n')) resolve()
      })
      void exit.then(() => reject(new Error(`${interpreter[0]} exited before the first half: ${stderr}${stdout}`)))
    })
    if (opts.midway !== undefined) await opts.midway()
    child.stdin.end('go\n')
    const code = await exit
    if (code !== 0) throw new Error(`${interpreter[0]} exited with ${code}: ${stderr}`)
    const result = JSON.parse(stdout.slice(stdout.indexOf('half\n') + 5)) as { ok: boolean, settled: number, refused: number }
    return { ...result, log: stderr }
  } finally {
    clearTimeout(timer)
    if (child.exitCode === null) child.kill('SIGKILL')
  }
}

export async function runPhpAck (dir: string, socketPath: string, opts: AckRunOptions): Promise<AckRunResult> {
  const script = path.join(dir, `ack-${process.hrtime.bigint()}.php`)
  fs.writeFileSync(script, `<?php
declare(strict_types=1);
require ${JSON.stringify(PHP_CLIENT)};
$d = json_decode((string) file_get_contents($argv[1]), true);
$k = new Kahets\\Client($d['socket'], ['ack' => $d['ack'], 'timeout' => 1.0]);
$half = intdiv(count($d['messages']), 2);
foreach ($d['messages'] as $i => $m) {
    if ($i === $half) {
        echo "half\\n";
        fgets(STDIN);
    }
    while (!$k->send($m['bucket'], $m['payload'], $m['key'] ?? null)) {
        if (!$k->flush($d['timeout'])) {
            break;
        }
    }
}
if ($half === 0) {
    echo "half\\n";
    fgets(STDIN);
}
$ok = $k->flush($d['timeout']);
echo json_encode(['ok' => $ok, 'settled' => $k->settled(), 'refused' => $k->refused()]), "\\n";
`)
  return await runScript(['php', '-n', '-d', 'error_reporting=-1', '-d', 'display_errors=stderr'], script, socketPath, opts)
}

export async function runPythonAck (dir: string, socketPath: string, opts: AckRunOptions): Promise<AckRunResult> {
  const script = path.join(dir, `ack-${process.hrtime.bigint()}.py`)
  fs.writeFileSync(script, `import json, sys
sys.path.insert(0, ${JSON.stringify(PYTHON_CLIENT_DIR)})
import kahets
with open(sys.argv[1]) as f:
    d = json.load(f)
half = len(d['messages']) // 2
with kahets.Client(d['socket'], ack=d['ack']) as k:
    for i, m in enumerate(d['messages']):
        if i == half:
            print('half', flush=True)
            sys.stdin.readline()
        k.send(m['bucket'], m['payload'], m.get('key'))
    if half == 0:
        print('half', flush=True)
        sys.stdin.readline()
    ok = k.flush(d['timeout'])
    print(json.dumps({'ok': ok, 'settled': k.settled, 'refused': k.refused}), flush=True)
`)
  return await runScript(['python3', '-X', 'dev'], script, socketPath, opts)
}
