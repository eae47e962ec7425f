// The TLS and SASL settings of a kafka stream (src/config/kafka-security.ts), on certificates
// and keys made by openssl for this test: every file is read while parsing, and every mistake
// is an error at its JSON path, all of them in one error.
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseBucketsConfig, type KafkaSettings } from '../../src/config/buckets.ts'
import { ConfigError } from '../../src/errors.ts'
import { tlsOptions } from '../../src/streams/kafka-security.ts'
import { makeTempDir } from '../helpers/kahets.ts'
import { makeTestPki, type TestPki } from '../helpers/tls.ts'

// Made once for the file (top level: an after() inside before() would run when the hook ends).
const pkiDir = await mkdtemp(join(tmpdir(), 'kahets-pki-'))
after(() => rm(pkiDir, { recursive: true, force: true }))
const pki: TestPki = await makeTestPki(pkiDir)

const at = (key: string): string => `$.streamsConfigs.k.settings[${JSON.stringify(key)}]`

function doc (settings: Record<string, unknown>): object {
  return { streamsConfigs: { k: { type: 'kafka', settings: { 'bootstrap.servers': '127.0.0.1:9093', ...settings } } }, buckets: [{ id: 'a', streams: ['k'] }] }
}

function settingsOf (settings: Record<string, unknown>): { settings: KafkaSettings, warnings: readonly string[] } {
  const c = parseBucketsConfig(doc(settings))
  const k = c.streams.get('k')!
  assert.ok(k.type === 'kafka')
  return { settings: k.settings, warnings: c.warnings }
}

function problems (settings: Record<string, unknown>): Array<{ path: string, message: string }> {
  try {
    parseBucketsConfig(doc(settings))
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err))
    return err.problems.map((p) => ({ ...p }))
  }
  return assert.fail('expected a ConfigError')
}

test('ssl with a client certificate: every file is read while parsing, the stream gets contents and the password', async () => {
  const { settings } = settingsOf({
    'security.protocol': 'ssl',
    'ssl.ca.location': pki.caFile,
    'ssl.certificate.location': pki.clientCert,
    'ssl.key.location': pki.clientKey,
    'ssl.key.password': pki.clientKeyPassword,
  })
  assert.deepEqual(settings.ssl, {
    caLocation: pki.caFile,
    ca: await readFile(pki.caFile, 'utf8'),
    certificateLocation: pki.clientCert,
    certificate: await readFile(pki.clientCert, 'utf8'),
    keyLocation: pki.clientKey,
    key: await readFile(pki.clientKey, 'utf8'),
    keyPassword: pki.clientKeyPassword,
    verifyHostname: true,
  })
  assert.equal(settings.sasl, null)
  // What both clients hand to tls.connect().
  const options = tlsOptions(settings)!
  assert.deepEqual(options.ca, [settings.ssl!.ca])
  assert.equal(options.cert, settings.ssl!.certificate)
  assert.equal(options.key, settings.ssl!.key)
  assert.equal(options.passphrase, pki.clientKeyPassword)
  assert.equal(options.checkServerIdentity, undefined, 'the host name is checked by default (https)')
})

test('ssl.endpoint.identification.algorithm: https checks the host name, none does not, anything else is an error', () => {
  const none = settingsOf({ 'security.protocol': 'SSL', 'ssl.ca.location': pki.caFile, 'ssl.endpoint.identification.algorithm': 'none' }).settings
  assert.equal(none.ssl!.verifyHostname, false)
  assert.equal(typeof tlsOptions(none)!.checkServerIdentity, 'function')
  assert.equal(settingsOf({ 'security.protocol': 'ssl', 'ssl.endpoint.identification.algorithm': 'HTTPS' }).settings.ssl!.verifyHostname, true)
  assert.deepEqual(problems({ 'security.protocol': 'ssl', 'ssl.endpoint.identification.algorithm': 'dns' }).map((p) => p.path), [at('ssl.endpoint.identification.algorithm')])
})

test('a key that is encrypted without ssl.key.password, or with a wrong one, is an error at ssl.key.location', () => {
  const tls = { 'security.protocol': 'ssl', 'ssl.certificate.location': pki.clientCert, 'ssl.key.location': pki.clientKey }
  const missing = problems(tls)
  assert.deepEqual(missing.map((p) => p.path), [at('ssl.key.location')])
  assert.match(missing[0]!.message, /is encrypted: set ssl\.key\.password/)
  const wrong = problems({ ...tls, 'ssl.key.password': 'not-the-password' })
  assert.deepEqual(wrong.map((p) => p.path), [at('ssl.key.location')])
  assert.match(wrong[0]!.message, /wrong ssl\.key\.password/)
  // An unencrypted key needs no password.
  assert.equal(settingsOf({ ...tls, 'ssl.key.location': pki.clientKeyPlain }).settings.ssl!.keyPassword, null)
})

test('a certificate without its key, a key without its certificate, or a key of another certificate are errors', () => {
  assert.deepEqual(problems({ 'security.protocol': 'ssl', 'ssl.certificate.location': pki.clientCert }).map((p) => p.path), [at('ssl.certificate.location')])
  assert.deepEqual(problems({ 'security.protocol': 'ssl', 'ssl.key.location': pki.clientKeyPlain }).map((p) => p.path), [at('ssl.key.location')])
  assert.deepEqual(problems({ 'security.protocol': 'ssl', 'ssl.key.password': 'x' }).map((p) => p.path), [at('ssl.key.password')])
  const mismatch = problems({ 'security.protocol': 'ssl', 'ssl.certificate.location': pki.clientCert, 'ssl.key.location': pki.untrustedClientKey })
  assert.deepEqual(mismatch.map((p) => p.path), [at('ssl.key.location')])
  assert.match(mismatch[0]!.message, /does not belong to the certificate/)
})

test('unreadable and non-PEM files are errors naming the file, all in one error', async () => {
  const dir = await makeTempDir()
  await writeFile(join(dir, 'junk.pem'), 'not a certificate')
  const all = problems({
    'security.protocol': 'sasl_ssl',
    'ssl.ca.location': join(dir, 'missing.pem'),
    'ssl.certificate.location': join(dir, 'junk.pem'),
    'ssl.key.location': join(dir, 'junk.pem'),
  })
  assert.deepEqual(all.map((p) => p.path), [at('ssl.ca.location'), at('ssl.certificate.location'), at('ssl.key.location'), at('sasl.username'), at('sasl.password')])
  assert.match(all[0]!.message, /cannot read CA file .*missing\.pem: ENOENT/)
  assert.match(all[1]!.message, /certificate file .*junk\.pem holds no PEM certificate/)
  assert.match(all[2]!.message, /cannot load private key .*junk\.pem: not a PEM private key/)
})

test('sasl: mechanism, user and password; an unknown mechanism is a schema error', () => {
  const { settings } = settingsOf({ 'security.protocol': 'SASL_PLAINTEXT', 'sasl.mechanisms': 'SCRAM-SHA-512', 'sasl.username': 'u', 'sasl.password': 'p' })
  assert.deepEqual(settings.sasl, { mechanism: 'scram-sha-512', username: 'u', password: 'p' })
  assert.equal(settings.ssl, null)
  assert.equal(settingsOf({ 'security.protocol': 'sasl_ssl', 'sasl.username': 'u', 'sasl.password': 'p' }).settings.sasl!.mechanism, 'plain', 'PLAIN by default, as librdkafka')
  assert.deepEqual(problems({ 'security.protocol': 'sasl_plaintext', 'sasl.mechanisms': 'GSSAPI', 'sasl.username': 'u', 'sasl.password': 'p' }).map((p) => p.path), [at('sasl.mechanisms')])
  assert.deepEqual(problems({ 'security.protocol': 'tls' }).map((p) => p.path), [at('security.protocol')])
})

test('settings the protocol does not use are named in a warning, as librdkafka ignores them', () => {
  const { settings, warnings } = settingsOf({ 'ssl.ca.location': '/nonexistent/ca.pem', 'sasl.username': 'u' })
  assert.equal(settings.ssl, null, 'plaintext reads no file')
  assert.equal(warnings.length, 1)
  assert.match(warnings[0]!, /security\.protocol plaintext does not use ssl\.ca\.location, sasl\.username; ignored/)
})
