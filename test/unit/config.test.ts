import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadBucketsFile, parseBucketsConfig } from '../../src/config/buckets.ts'
import { loadEnv } from '../../src/config/env.ts'
import { parseSize } from '../../src/config/sizes.ts'
import { ConfigError } from '../../src/errors.ts'

const fixture = new URL('../fixtures/kahego-buckets.json', import.meta.url).pathname

function problems (fn: () => unknown): Array<{ path: string, message: string }> {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`)
    return err.problems.map((p) => ({ ...p }))
  }
  assert.fail('expected a ConfigError')
}

const fileStream = { type: 'file', settings: { path: '/tmp/kahets-x' } }
const base = () => ({ streamsConfigs: { f: structuredClone(fileStream) }, buckets: [{ id: 'a', streams: ['f'], batch: 10, batchTimeout: 100 }] })

test("kahego's example buckets file loads unchanged", () => {
  const c = loadBucketsFile(fixture)
  assert.deepEqual([...c.streams.keys()], ['kafka_01', 'file_copy'])
  const kafka = c.streams.get('kafka_01')!
  assert.equal(kafka.type, 'kafka')
  if (kafka.type !== 'kafka') return
  assert.deepEqual(kafka.settings.brokers, ['kafka1:29092'])
  assert.equal(kafka.settings.acks, -1)
  assert.equal(kafka.settings.compression, 'snappy')
  assert.equal(kafka.settings.batchNumMessages, 50000)
  assert.equal(kafka.settings.queueMaxMessages, 500000)
  assert.equal(kafka.settings.lingerMs, 1000)
  assert.equal(kafka.backup?.type, 'file')
  assert.equal(kafka.backup?.type === 'file' && kafka.backup.settings.sizeRotate, 10 * 1024 * 1024)
  assert.deepEqual(c.buckets.get('requests'), { id: 'requests', streams: ['kafka_01', 'file_copy'], batch: 10000, batchTimeout: 30000, schema: null, deadLetter: null })
  assert.equal(c.defaultBucket?.batch, 1000)
  assert.deepEqual(c.warnings, [])
  assert.ok(Object.isFrozen(c.buckets.get('requests')))
})

test('each invalid buckets case names its JSON path', () => {
  const cases: Array<[string, (d: ReturnType<typeof base> & Record<string, unknown>) => void, string, RegExp]> = [
    ['undefined stream', (d) => { d.buckets[0]!.streams = ['nope'] }, '$.buckets[0].streams[0]', /not defined/],
    ['slice above 1', (d) => { (d.streamsConfigs.f as Record<string, unknown>).slice = 1.5 }, '$.streamsConfigs.f.slice', /must be at most 1$/],
    ['slice below 0', (d) => { (d.streamsConfigs.f as Record<string, unknown>).slice = -0.1 }, '$.streamsConfigs.f.slice', /.+/],
    ['unknown stream type', (d) => { (d.streamsConfigs.f as Record<string, unknown>).type = 'redis' }, '$.streamsConfigs.f.type', /one of/],
    ['unknown file setting', (d) => { (d.streamsConfigs.f.settings as Record<string, unknown>).colour = 'red' }, '$.streamsConfigs.f.settings', /unknown property "colour"/],
    ['bad size', (d) => { (d.streamsConfigs.f.settings as Record<string, unknown>).sizeRotate = '10 parsecs' }, '$.streamsConfigs.f.settings.sizeRotate', /.+/],
    ['missing path', (d) => { d.streamsConfigs.f.settings = {} as never }, '$.streamsConfigs.f.settings', /missing required property "path"/],
    ['template escapes', (d) => { (d.streamsConfigs.f.settings as Record<string, unknown>).fileNameTemplate = '../{bucket}' }, '$.streamsConfigs.f.settings.fileNameTemplate', /.+/],
    ['batch zero', (d) => { d.buckets[0]!.batch = 0 }, '$.buckets[0].batch', /.+/],
    ['bucket id with slash', (d) => { d.buckets[0]!.id = 'a/b' }, '$.buckets[0].id', /^must be a bucket name \(the Kafka topic\): 1 to 255 of .*, not "a\/b"$/],
    ['duplicate bucket', (d) => { d.buckets.push({ ...d.buckets[0]! }) }, '$.buckets[1].id', /twice/],
    ['unknown top-level key', (d) => { d.extra = 1 }, '$', /unknown property "extra"/],
    ['missing buckets', (d) => { delete (d as Record<string, unknown>).buckets }, '$', /missing required property "buckets"/],
    // Issue 10: a typo must not turn fsync off; batch and batchTimeout have bounds.
    ['fsync typo', (d) => { (d.streamsConfigs.f.settings as Record<string, unknown>).fsync = 'flase' }, '$.streamsConfigs.f.settings.fsync', /^must be one of true, false, "true", "false"$/],
    ['fsync as a number', (d) => { (d.streamsConfigs.f.settings as Record<string, unknown>).fsync = 0 }, '$.streamsConfigs.f.settings.fsync', /^must be one of true, false, "true", "false"$/],
    ['fsync "TRUE"', (d) => { (d.streamsConfigs.f.settings as Record<string, unknown>).fsync = 'TRUE' }, '$.streamsConfigs.f.settings.fsync', /^must be one of true, false, "true", "false"$/],
    ['batch 1e308', (d) => { d.buckets[0]!.batch = 1e308 }, '$.buckets[0].batch', /at most 1000000/],
    ['batch as a long string', (d) => { (d.buckets[0] as Record<string, unknown>).batch = '1000001' }, '$.buckets[0].batch', /at most 1000000/],
    ['batch fraction', (d) => { d.buckets[0]!.batch = 1.5 }, '$.buckets[0].batch', /whole number/],
    ['batchTimeout 1e308', (d) => { d.buckets[0]!.batchTimeout = 1e308 }, '$.buckets[0].batchTimeout', /at most 3600000/],
    ['batchTimeout string above', (d) => { (d.buckets[0] as Record<string, unknown>).batchTimeout = '3600001' }, '$.buckets[0].batchTimeout', /at most 3600000/],
    // Issue 14: sliceBy is "random" or "key", nothing else.
    ['sliceBy typo', (d) => { (d.streamsConfigs.f as Record<string, unknown>).sliceBy = 'keys' }, '$.streamsConfigs.f.sliceBy', /^must be one of "random", "key"$/],
    ['defaultBucket batch 1e308', (d) => { d.defaultBucket = { streams: ['f'], batch: 1e308 } }, '$.defaultBucket.batch', /at most 1000000/],
  ]
  for (const [name, mutate, path, message] of cases) {
    const doc = base() as ReturnType<typeof base> & Record<string, unknown>
    mutate(doc)
    const found = problems(() => parseBucketsConfig(doc))
    assert.ok(found.some((p) => p.path === path && message.test(p.message)), `${name}: expected ${path} ~ ${message}, got ${JSON.stringify(found)}`)
  }
})

test('fsync: true, false, "true" or "false"; batch and batchTimeout up to their bounds', () => {
  const parsed = (fsync: unknown, batch: unknown, batchTimeout: unknown) => {
    const doc = base() as ReturnType<typeof base> & Record<string, unknown>
    ;(doc.streamsConfigs.f.settings as Record<string, unknown>).fsync = fsync
    Object.assign(doc.buckets[0]!, { batch, batchTimeout })
    const c = parseBucketsConfig(doc)
    const f = c.streams.get('f')!
    return { fsync: f.type === 'file' && f.settings.fsync, batch: c.buckets.get('a')!.batch, batchTimeout: c.buckets.get('a')!.batchTimeout }
  }
  assert.deepEqual(parsed(false, 1000000, 3600000), { fsync: false, batch: 1000000, batchTimeout: 3600000 })
  assert.deepEqual(parsed('false', '1000000', ' 3600000 '), { fsync: false, batch: 1000000, batchTimeout: 3600000 })
  assert.deepEqual(parsed('true', 1, 1), { fsync: true, batch: 1, batchTimeout: 1 })
  assert.deepEqual(parsed(true, '7', '9'), { fsync: true, batch: 7, batchTimeout: 9 })
})

test('every problem is reported at once', () => {
  const doc = base()
  doc.buckets[0]!.streams = ['nope']
  doc.buckets.push({ id: 'b', streams: ['gone'], batch: 1, batchTimeout: 1 })
  const found = problems(() => parseBucketsConfig(doc))
  assert.deepEqual(found.map((p) => p.path), ['$.buckets[0].streams[0]', '$.buckets[1].streams[0]'])
})

test('schema errors and cross-checks in one pass, in words: no regular expression, no ajv keyword', () => {
  const doc = {
    streamsConfigs: {
      f: { type: 'file', slice: 'half', settings: { path: '/tmp/kahets-f', sizeRotate: '10 parsecs', maxFiles: 'many' } },
      g: { type: 'file', settings: { path: '/tmp/kahets-g', fileNameTemplate: '../{bucket}' } },
      '': { type: 'file', settings: { path: '' } },
    },
    buckets: [
      { id: 'a/b', streams: ['f', 'missing'], batch: 'lots' },
      { id: '..', streams: [] },
      { id: 'ok', streams: ['g', 'gone'], batchTimeout: '3600001' },
    ],
  }
  const found = problems(() => parseBucketsConfig(doc))
  const at = (path: string): string => found.filter((p) => p.path === path).map((p) => p.message).join(' | ')
  assert.equal(at('$.streamsConfigs.f.slice'), 'must be a fraction from 0 to 1 such as "0.1", not "half"')
  assert.equal(at('$.streamsConfigs.f.settings.sizeRotate'), 'must be a size such as "10MB" or "64KiB", not "10 parsecs"')
  assert.equal(at('$.streamsConfigs.f.settings.maxFiles'), 'must be a whole number such as "10", not "many"')
  assert.equal(at('$.streamsConfigs'), 'has a name that is not allowed: ""')
  assert.equal(at('$.streamsConfigs[""].settings.path'), 'must not be empty')
  assert.match(at('$.buckets[0].id'), /^must be a bucket name .*, not "a\/b"$/)
  assert.match(at('$.buckets[1].id'), /^must be a bucket name .*, not "\.\."$/)
  assert.equal(at('$.buckets[1].streams'), 'must not be empty')
  assert.equal(at('$.buckets[0].batch'), 'must be a whole number from 1 such as "1000", not "lots"')
  // The cross-checks ran too: references (also of buckets the schema refused), a template
  // of a sound stream, the bound on a string of a sound bucket.
  assert.equal(at('$.buckets[0].streams[1]'), 'stream "missing" is not defined in streamsConfigs')
  assert.equal(at('$.buckets[2].streams[1]'), 'stream "gone" is not defined in streamsConfigs')
  assert.match(at('$.streamsConfigs.g.settings.fileNameTemplate'), /.+/)
  assert.equal(at('$.buckets[2].batchTimeout'), 'must be at most 3600000')
  for (const p of found) assert.doesNotMatch(p.message, /pattern|\^|\\[sd]|oneOf|must NOT|must match/, `${p.path}: ${p.message}`)
})

test('Kafka settings: librdkafka names kahets does not use warn; unknown names and bad values are errors', () => {
  const kafka = (settings: Record<string, unknown>) => ({ streamsConfigs: { k: { type: 'kafka', settings: { 'bootstrap.servers': '127.0.0.1:9092', ...settings } } }, buckets: [{ id: 'a', streams: ['k'] }] })
  const ok = parseBucketsConfig(kafka({ 'socket.keepalive.enable': 'true', 'retry.backoff.ms': '100' }))
  assert.deepEqual(ok.warnings, ['$.streamsConfigs.k.settings: librdkafka settings kahets does not use, ignored: socket.keepalive.enable, retry.backoff.ms'])
  assert.ok(problems(() => parseBucketsConfig(kafka({ 'bootstrap.servrs': 'x:1' }))).some((p) => /unknown Kafka setting "bootstrap.servrs"/.test(p.message)))
  assert.ok(problems(() => parseBucketsConfig(kafka({ acks: '2' }))).some((p) => p.path === '$.streamsConfigs.k.settings.acks'))
  assert.ok(problems(() => parseBucketsConfig(kafka({ 'compression.codec': 'brotli' }))).some((p) => p.path === '$.streamsConfigs.k.settings["compression.codec"]'))
  assert.ok(problems(() => parseBucketsConfig(kafka({ 'batch.num.messages': 'many' }))).some((p) => p.path === '$.streamsConfigs.k.settings["batch.num.messages"]'))
  assert.ok(problems(() => parseBucketsConfig(kafka({ 'bootstrap.servers': 'no-port' }))).some((p) => /host:port/.test(p.message)))
  const numbers = parseBucketsConfig(kafka({ acks: 1, 'batch.num.messages': 500, 'queue.buffering.max.ms': 20 })).streams.get('k')!
  assert.ok(numbers.type === 'kafka' && numbers.settings.acks === 1 && numbers.settings.batchNumMessages === 500 && numbers.settings.lingerMs === 20)
  // kahets.client: platformatic unless kafkajs is asked for; anything else is an error.
  assert.ok(numbers.type === 'kafka' && numbers.settings.client === 'platformatic')
  const kafkajs = parseBucketsConfig(kafka({ 'kahets.client': 'kafkajs' })).streams.get('k')!
  assert.ok(kafkajs.type === 'kafka' && kafkajs.settings.client === 'kafkajs')
  assert.ok(problems(() => parseBucketsConfig(kafka({ 'kahets.client': 'rdkafka' }))).some((p) => p.path === '$.streamsConfigs.k.settings["kahets.client"]'))
})

test('ssl.ca.location is read while parsing: the stream gets the contents; an unreadable or non-PEM file is an error at its path', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kahets-cfg-'))
  const pem = '-----BEGIN CERTIFICATE-----\nMIIBiTCCAS+gAwIBAgIULEqxYsLNEOpWNdjuK8wRp0GImIYwCgYIKoZIzj0EAwIw\nGTEXMBUGA1UEAwwOa2FoZXRzLXRlc3QtY2EwIBcNMjYxMTMwMDMzMDE2WhgPMjEy\nNjExMDYwMzMwMTZaMBkxFzAVBgNVBAMMDmthaGV0cy10ZXN0LWNhMFkwEwYHKoZI\nzj0CAQYIKoZIzj0DAQcDQgAEuxPTWBC5bdCdAxczN9sU42Brh962yQ4G5o4nqWS5\nqR/Zu/Fy7aL/MojDyOJnZ/dUKu6VKmC1onSCvGtnFRjq8qNTMFEwHQYDVR0OBBYE\nFCIH+JxkIUQgJ+ScDEaBxBkq6DKgMB8GA1UdIwQYMBaAFCIH+JxkIUQgJ+ScDEaB\nxBkq6DKgMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgbtuXFLVY\nuCa1HPmRK1ZLlK9KNC6LwGrW0XibRfGe7MACIQCAaISz7nQDYAh6MhFY+G4dR1DW\nf6W5Q0Glb1X7K19Hlw==\n-----END CERTIFICATE-----\n'
  await writeFile(join(dir, 'ca.pem'), pem)
  await writeFile(join(dir, 'junk.pem'), 'not a certificate')
  const tls = (ca: string, backup?: object) => ({
    streamsConfigs: { k: { type: 'kafka', settings: { 'bootstrap.servers': '127.0.0.1:9093', 'security.protocol': 'SSL', 'ssl.ca.location': ca }, ...(backup === undefined ? {} : { backup }) } },
    buckets: [{ id: 'a', streams: ['k'] }],
  })
  const k = parseBucketsConfig(tls(join(dir, 'ca.pem'))).streams.get('k')!
  assert.ok(k.type === 'kafka')
  assert.deepEqual(k.settings.ssl, { caLocation: join(dir, 'ca.pem'), ca: pem, certificateLocation: null, certificate: null, keyLocation: null, key: null, keyPassword: null, verifyHostname: true })
  const at = '$.streamsConfigs.k.settings["ssl.ca.location"]'
  assert.deepEqual(problems(() => parseBucketsConfig(tls(join(dir, 'missing.pem')))).map((p) => p.path), [at])
  assert.match(problems(() => parseBucketsConfig(tls(join(dir, 'missing.pem'))))[0]!.message, /cannot read CA file .*missing\.pem: ENOENT/)
  assert.match(problems(() => parseBucketsConfig(tls(join(dir, 'junk.pem'))))[0]!.message, /holds no PEM certificate/)
  // With every other problem, in one error.
  const both = problems(() => parseBucketsConfig({ ...tls(join(dir, 'missing.pem')), buckets: [{ id: 'a', streams: ['nope'] }] }))
  assert.deepEqual(both.map((p) => p.path), [at, '$.buckets[0].streams[0]'])
})

test('file streams that could claim each other\'s files are an error: same folder (or one inside the other) and overlapping templates', () => {
  const file = (path: string, fileNameTemplate?: string, backup?: object) => ({ type: 'file', settings: { path, ...(fileNameTemplate === undefined ? {} : { fileNameTemplate }) }, ...(backup === undefined ? {} : { backup }) })
  const doc = (streams: Record<string, object>) => ({ streamsConfigs: streams, buckets: [{ id: 'a', streams: Object.keys(streams) }] })
  const shared = (streams: Record<string, object>) => {
    try {
      parseBucketsConfig(doc(streams))
      return []
    } catch (err) {
      assert.ok(err instanceof ConfigError)
      return err.problems.map((p) => `${p.path}: ${p.message}`)
    }
  }
  // Same folder, default templates: two streams, a stream and its own backup, a stream and another's backup.
  assert.match(shared({ x: file('/d'), y: file('/d') }).join('\n'), /^\$\.streamsConfigs\.y\.settings\.path: shares files with \$\.streamsConfigs\.x: both could write \/d\/\S+\.frames, /)
  assert.deepEqual(shared({ x: file('/d', undefined, file('/d/')) }).map((p) => p.split(':')[0]), ['$.streamsConfigs.x.backup.settings.path'])
  assert.deepEqual(shared({ x: file('/e'), k: { type: 'kafka', settings: { 'bootstrap.servers': 'h:1' }, backup: file('/e/.') } }).map((p) => p.split(':')[0]), ['$.streamsConfigs.k.backup.settings.path'])
  // One folder inside the other, where the names can meet: /d/a/<ts>.log is bucket a's file of x.
  assert.equal(shared({ x: file('/d', '{bucket}{PS}{ts}.log'), y: file('/d/a', '{ts}.log') }).length, 1)
  // A name one template makes with a collision suffix, the other plainly: b-0.log.1.
  assert.equal(shared({ x: file('/d', '{bucket}.{ts}'), y: file('/d', '{bucket}-{ts}.log') }).length, 1)
  // {hostname} is any host name: the check does not depend on the machine.
  assert.equal(shared({ x: file('/d', '{hostname}-{bucket}.log'), y: file('/d', 'web-{bucket}.log') }).length, 1)
  // Provably apart: other folders, other fixed prefixes, other extensions, other subfolders.
  assert.deepEqual(shared({ x: file('/d'), y: file('/e'), z: file('/d/backup') }), [])
  assert.deepEqual(shared({ x: file('/d', 'x-{bucket}-{ts}.log'), y: file('/d', 'y-{bucket}-{ts}.log') }), [])
  assert.deepEqual(shared({ x: file('/d', '{bucket}-{ts}.a'), y: file('/d', '{bucket}-{ts}.b', file('/d', '{bucket}-{ts}.c')) }), [])
  assert.deepEqual(shared({ x: file('/d', 'copy/{bucket}-{ts}.f'), y: file('/d', 'backup/{bucket}-{ts}.f') }), [])
})

test('unreadable and non-JSON buckets files are config errors naming the file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kahets-cfg-'))
  await writeFile(join(dir, 'bad.json'), '{ "streamsConfigs": ')
  assert.match(problems(() => loadBucketsFile(join(dir, 'bad.json')))[0]!.message, /not valid JSON/)
  assert.match(problems(() => loadBucketsFile(join(dir, 'missing.json')))[0]!.message, /cannot read/)
})

test('sizes: B KB MB GB and KiB MiB GiB, all 1024-based, bare numbers', () => {
  assert.equal(parseSize('64KiB'), 64 * 1024)
  assert.equal(parseSize('64KB'), parseSize('64KiB'), 'KB keeps its 1024-based meaning')
  assert.equal(parseSize('2 MiB'), 2 * 1024 ** 2)
  assert.equal(parseSize('1gib'), 1024 ** 3)
  assert.equal(parseSize('1.5MiB'), 1.5 * 1024 ** 2)
  assert.equal(parseSize('1KiBB'), null)
  assert.equal(parseSize('1iB'), null)
  assert.equal(parseSize('1Ki'), null)
  assert.equal(parseSize('250MB'), 250 * 1024 * 1024)
  assert.equal(parseSize('10 kb'), 10240)
  assert.equal(parseSize('1GB'), 1024 ** 3)
  assert.equal(parseSize('512'), 512)
  assert.equal(parseSize(2048), 2048)
  assert.equal(parseSize('1.5KB'), 1536)
  assert.equal(parseSize('ten'), null)
  assert.equal(parseSize('-1MB'), null)
})

test('env: defaults, the env file, process env winning, and every bad value named', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kahets-env-'))
  const d = loadEnv({ cwd: dir, env: {} })
  assert.equal(d.envFile, null)
  assert.equal(d.socket, '/tmp/kahets.sock')
  assert.equal(d.socketMode, 0o660)
  assert.equal(d.maxMemory, 250 * 1024 * 1024)
  assert.equal(d.maxFrameBytes, 1024 * 1024)
  assert.equal(d.logLevel, 'info')
  assert.equal(d.metrics, null)
  assert.equal(d.bucketsFile, join(dir, 'buckets.json'))

  await writeFile(join(dir, '.env.prod.local'), 'SOCKET=/run/kahets/k.sock\nLOG_LEVEL=WARNING\nMAXMEMORY=2MB\nMETRICS=127.0.0.1:9100\n')
  const prod = loadEnv({ cwd: dir, env: { environment: 'prod', LOG_LEVEL: 'debug' } })
  assert.equal(prod.envFile, join(dir, '.env.prod.local'))
  assert.equal(prod.socket, '/run/kahets/k.sock')
  assert.equal(prod.logLevel, 'debug', 'process env wins over the file')
  assert.equal(prod.maxMemory, 2 * 1024 * 1024)
  assert.deepEqual(prod.metrics, { host: '127.0.0.1', port: 9100 })
  assert.deepEqual(loadEnv({ cwd: dir, env: { METRICS: 'unix:/tmp/m.sock' } }).metrics, { path: '/tmp/m.sock' })
  for (const [name, level] of [['TRACE', 'trace'], ['Debug', 'debug'], ['ERROR', 'error'], ['FATAL', 'fatal'], ['PANIC', 'fatal']] as const) {
    assert.equal(loadEnv({ cwd: dir, env: { LOG_LEVEL: name } }).logLevel, level)
  }

  assert.equal(loadEnv({ cwd: dir, env: {} }).maxBuckets, 10_000)
  assert.equal(loadEnv({ cwd: dir, env: { MAX_BUCKETS: '50000' } }).maxBuckets, 50_000)
  const bad = problems(() => loadEnv({ cwd: dir, env: { SOCKET_MODE: 'rw', MAXMEMORY: 'lots', LOG_LEVEL: 'LOUD', MAX_FRAME_BYTES: '1TB', METRICS: 'nowhere', MAXCPUS: '0', MAX_BUCKETS: '0' } }))
  assert.deepEqual(bad.map((p) => p.path).sort(), ['LOG_LEVEL', 'MAXCPUS', 'MAXMEMORY', 'MAX_BUCKETS', 'MAX_FRAME_BYTES', 'METRICS', 'SOCKET_MODE'])
  assert.ok(bad.every((p) => p.message.includes('invalid value')))
  assert.match(problems(() => loadEnv({ cwd: dir, env: {}, envFile: 'nope.env' }))[0]!.message, /not found/)
})

test('env: the file cannot set what Node.js, libuv or OpenSSL read at start; the process environment may', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kahets-env-'))
  await writeFile(join(dir, 'k.env'), 'NODE_OPTIONS=--max-old-space-size=64\nUV_THREADPOOL_SIZE=16\nNODE_EXTRA_CA_CERTS=/x.pem\nOPENSSL_CONF=/y\nSSL_CERT_FILE=/z\nKAHEGO_ONLY=1\nSOCKET=/tmp/k.sock\n')
  const found = problems(() => loadEnv({ cwd: dir, env: {}, envFile: 'k.env' }))
  assert.deepEqual(found.map((p) => p.path), ['NODE_OPTIONS', 'UV_THREADPOOL_SIZE', 'NODE_EXTRA_CA_CERTS', 'OPENSSL_CONF', 'SSL_CERT_FILE'])
  assert.ok(found.every((p) => p.message.includes('Node.js reads it when the process starts')))
  // Names kahets does not know are ignored, as before; the process environment is not the file.
  await writeFile(join(dir, 'ok.env'), 'KAHEGO_ONLY=1\nSOCKET=/tmp/k.sock\n')
  assert.equal(loadEnv({ cwd: dir, env: { NODE_OPTIONS: '--max-old-space-size=64', UV_THREADPOOL_SIZE: '8' }, envFile: 'ok.env' }).socket, '/tmp/k.sock')
})
