// What kahets relies on inside its two pinned Kafka clients beyond their documented API
// (docs/kafka-clients.md, "What is pinned"). An upgrade that moves any of it fails here, naming
// what moved and which kahets file depends on it, before a broker test fails obscurely.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import * as platformatic from '@platformatic/kafka'
import { patchedKafkajs } from '../../src/streams/kafkajs-patches.ts'

const require = createRequire(import.meta.url)
const root = path.resolve(import.meta.dirname, '../..')
const pins = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies

function installed (pkg: string): { version: string, dir: string } {
  const dir = path.join(root, 'node_modules', pkg)
  return { version: (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version, dir }
}

/** Fails with what moved and who needs it: `what` is the expectation, `usedBy` the kahets file. */
function expectInternal (pkg: string, ok: boolean, what: string, usedBy: string): void {
  if (ok) return
  const { version } = installed(pkg)
  assert.fail(`${pkg} ${version}: ${what} — no longer true; ${usedBy} relies on it (pinned ${pins[pkg]}; see docs/kafka-clients.md)`)
}

function source (pkg: string, file: string): string {
  return readFileSync(path.join(installed(pkg).dir, file), 'utf8')
}

test('the installed clients are the pinned versions', () => {
  for (const pkg of ['@platformatic/kafka', 'kafkajs']) {
    assert.equal(installed(pkg).version, pins[pkg], `${pkg}: installed ${installed(pkg).version}, package.json pins ${pins[pkg]}: run npm ci, or re-check this file's expectations before moving the pin`)
  }
})

const PK = '@platformatic/kafka'

test('@platformatic/kafka: the exports PreEncodedProducer builds on', () => {
  const exports = platformatic as unknown as Record<string, unknown>
  const uses = 'src/streams/pre-encoded-producer.ts'
  expectInternal(PK, typeof exports.Producer === 'function', 'export Producer is a class', uses)
  expectInternal(PK, typeof exports.kGetApi === 'symbol', 'export kGetApi is a symbol', uses)
  const getApi = (platformatic.Producer.prototype as unknown as Record<symbol, unknown>)[platformatic.kGetApi]
  expectInternal(PK, typeof getApi === 'function' && getApi.length === 2, 'Producer.prototype[kGetApi] is a method (name, callback)', uses)
  for (const v of [7, 8, 9, 10, 11]) {
    const api = exports[`produceV${v}`] as { parseResponse?: unknown, api?: unknown } | undefined
    expectInternal(PK, typeof api?.parseResponse === 'function' && api.parseResponse.length === 4, `export produceV${v}.parseResponse(correlationId, apiKey, apiVersion, reader)`, uses)
  }
  const send = (platformatic.Connection.prototype as unknown as { send?: unknown }).send
  expectInternal(PK, typeof send === 'function' && send.length === 7, 'Connection.prototype.send(apiKey, apiVersion, createPayload, parser, requestTagged, responseTagged, callback)', uses)
})

test('@platformatic/kafka: the Writer methods a produce request is written with', () => {
  const writer = platformatic.Writer.create() as unknown as Record<string, unknown>
  for (const method of ['appendString', 'appendInt16', 'appendInt32', 'appendArray', 'appendUnsignedVarInt', 'append', 'appendTaggedFields']) {
    expectInternal(PK, typeof writer[method] === 'function', `Writer.create().${method} is a method`, 'src/streams/pre-encoded-producer.ts')
  }
  expectInternal(PK, typeof writer.context === 'object' && writer.context !== null, 'a Writer has a context object (noResponse for acks=0)', 'src/streams/pre-encoded-producer.ts')
})

test('@platformatic/kafka: the Producer asks kGetApi for Produce and calls it (connection, acks, timeout, messages, options, callback)', () => {
  const producer = source(PK, 'dist/clients/producer/producer.js')
  const uses = 'src/streams/pre-encoded-producer.ts (its Produce api replaces platformatic\'s)'
  expectInternal(PK, producer.includes("this[kGetApi]('Produce'"), "Producer fetches its Produce api through this[kGetApi]('Produce', …)", uses)
  expectInternal(PK, /api\(connection, acks, timeout, messages, produceOptions, \(/.test(producer), 'the Produce api is called as api(connection, acks, timeout, messages, produceOptions, callback)', uses)
  expectInternal(PK, /message\.partition %= /.test(producer), 'a message with a partition keeps it (partition %= count)', 'src/streams/kafka-batching.ts (kahets places messages)')
})

test('@platformatic/kafka: the codec table kahets reads and fills', () => {
  const table = platformatic.compressionsAlgorithms as unknown as Record<string, { compressSync?: unknown, decompressSync?: unknown, bitmask?: unknown }>
  const uses = 'src/streams/platformatic-client.ts (zstd on Node 20) and record-batch.ts (codec ids)'
  const bits = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 }
  for (const [name, bitmask] of Object.entries(bits)) {
    const codec = table[name]
    expectInternal(PK, typeof codec?.compressSync === 'function' && typeof codec.decompressSync === 'function', `compressionsAlgorithms.${name} has compressSync and decompressSync`, uses)
    expectInternal(PK, codec?.bitmask === bitmask, `compressionsAlgorithms.${name}.bitmask is ${bitmask}`, uses)
    const descriptor = Object.getOwnPropertyDescriptor(codec, 'compressSync')
    expectInternal(PK, descriptor?.writable === true, `compressionsAlgorithms.${name}.compressSync can be replaced`, uses)
  }
})

test('@platformatic/kafka: an unknown topic is a UserError "Unknown topic …"; protocol errors carry apiCode; SASL failures their class code', () => {
  const base = source(PK, 'dist/clients/base/base.js')
  // No cause and no protocol code on it (2.12.1): the text is all there is. Should it gain
  // `{ cause }`, this fails, and refusalOf can read the code instead.
  expectInternal(PK, base.includes('deduplicateCallback(new UserError(`Unknown topic ${topicName}.`));'), 'metadata of an unknown topic fails with UserError("Unknown topic <name>.") and no cause', 'src/streams/platformatic-client.ts (refusalOf)')
  const err = new platformatic.ProtocolError('TOPIC_AUTHORIZATION_FAILED') as unknown as { apiId?: unknown, apiCode?: unknown }
  expectInternal(PK, err.apiCode === 29 && err.apiId === 'TOPIC_AUTHORIZATION_FAILED', 'ProtocolError carries the protocol error code as apiCode (29 here) and its name as apiId', 'src/streams/kafka-errors.ts (protocolCode)')
  const auth = new platformatic.AuthenticationError('x') as unknown as { code?: unknown }
  expectInternal(PK, auth.code === 'PLT_KFK_AUTHENTICATION', 'AuthenticationError has code PLT_KFK_AUTHENTICATION', 'src/streams/kafka-errors.ts (securityFailure)')
  const connection = source(PK, 'dist/network/connection.js')
  expectInternal(PK, connection.includes('new NetworkError(`Connection to ${host}:${port} failed.`, { cause })'), 'a failed connection (TLS, SASL) is a NetworkError whose cause is the failure', 'src/streams/kafka-errors.ts (walk)')
})

test('@platformatic/kafka: a produce request marked canRetry: false is not sent again, and a failed response keeps each partition\'s result', () => {
  const uses = 'src/streams/pre-encoded-producer.ts (notRetried) and platformatic-client.ts (acknowledgedPartitions)'
  const base = source(PK, 'dist/clients/base/base.js')
  expectInternal(PK, base.includes("const retriable = !findErrorBy(error, 'canRetry', false);"), 'kPerformWithRetry retries only when no error in the chain has canRetry: false', uses)
  const inner = new platformatic.ProtocolError('NOT_LEADER_OR_FOLLOWER')
  const marked = new platformatic.MultipleErrors('failed', [inner], { canRetry: false })
  expectInternal(PK, platformatic.MultipleErrors.isGenericError(marked) && marked.findBy('canRetry', false) === marked && marked.findBy('apiId', 'NOT_LEADER_OR_FOLLOWER') === inner,
    'a MultipleErrors built with { canRetry: false } is found by findBy(\'canRetry\', false) and still finds its inner errors', uses)
  const producer = source(PK, 'dist/clients/producer/producer.js')
  expectInternal(PK, /if \(hasStaleMetadata && repeatOnStaleMetadata\)/.test(producer), 'a send with repeatOnStaleMetadata: false does not repeat a request after stale metadata', uses)
  const response = { responses: [{ name: 't', partitionResponses: [{ index: 0, errorCode: 0 }, { index: 1, errorCode: 6 }] }] }
  const failed = new platformatic.ResponseError(0, 11, { '/responses/0/partition_responses/1': [6, null] }, response) as unknown as { response?: unknown, errors?: Array<{ apiId?: unknown }> }
  expectInternal(PK, failed.response === response && failed.errors?.[0]?.apiId === 'NOT_LEADER_OR_FOLLOWER', 'ResponseError(apiKey, apiVersion, errors, response) keeps the whole response (partitionResponses[].errorCode) and a ProtocolError per failed partition', uses)
  expectInternal(PK, producer.includes('error.produced = results;'), 'a failed send() lists the leaders\' acknowledged partitions in error.produced.offsets', uses)
})

const KJ = 'kafkajs'

test('kafkajs: the module kafkajs-patches.ts replaces is where, and what, it was', () => {
  const uses = 'src/streams/kafkajs-patches.ts'
  const resolves = (() => {
    try {
      return require.resolve('kafkajs/src/producer/groupMessagesPerPartition.js') !== ''
    } catch {
      return false
    }
  })()
  expectInternal(KJ, resolves, 'module kafkajs/src/producer/groupMessagesPerPartition.js exists', uses)
  expectInternal(KJ, source(KJ, 'src/producer/groupMessagesPerPartition.js').includes('module.exports = ({ topic, partitionMetadata, messages, partitioner }) =>'), 'it exports one function ({ topic, partitionMetadata, messages, partitioner })', uses)
  expectInternal(KJ, source(KJ, 'src/producer/sendMessages.js').includes("require('./groupMessagesPerPartition')"), 'sendMessages.js requires ./groupMessagesPerPartition', uses)
  assert.equal(patchedKafkajs, true, 'kafkajs loaded before kafkajs-patches.ts: the patch must be imported first')
})

test('kafkajs: the codec table and the empty-batch metadata kafkajs-client.ts relies on', () => {
  const kafkajs = require('kafkajs') as { CompressionCodecs?: unknown, CompressionTypes: Record<string, number> }
  expectInternal(KJ, typeof kafkajs.CompressionCodecs === 'object' && kafkajs.CompressionCodecs !== null, 'CompressionCodecs is exported (CommonJS) as a mutable table', 'src/streams/kafka-codecs.ts')
  expectInternal(KJ, JSON.stringify(kafkajs.CompressionTypes) === JSON.stringify({ None: 0, GZIP: 1, Snappy: 2, LZ4: 3, ZSTD: 4 }), 'CompressionTypes is { None: 0, GZIP: 1, Snappy: 2, LZ4: 3, ZSTD: 4 }', 'src/streams/kafka-codecs.ts')
  const send = source(KJ, 'src/producer/sendMessages.js')
  expectInternal(KJ, send.includes('await cluster.addMultipleTargetTopics(topics)') && send.includes("new KafkaJSMetadataNotLoaded('Producing to topic without metadata')"),
    'sendBatch loads (and auto-creates) its topics first, and fails with KafkaJSMetadataNotLoaded for a topic without partitions', 'src/streams/kafkajs-client.ts (metadata)')
})
