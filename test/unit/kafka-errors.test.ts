// classifyKafkaError (src/streams/kafka-errors.ts) on the errors both clients really raise,
// built with their own classes in the shapes seen from a real broker (kafka-security.test.ts
// covers the same failures end to end): decisions come from protocol codes, Node's TLS codes
// and error classes, never from message text.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { AuthenticationError, MultipleErrors, NetworkError, ProtocolError, ResponseError, UserError } from '@platformatic/kafka'
import kafkajs from 'kafkajs'
import { ErrorCodes, TopicRefusal } from '../../src/errors.ts'
import { classifyKafkaError, streamUnavailable } from '../../src/streams/kafka-errors.ts'

// Node's named-export detection does not find these in kafkajs's CommonJS index.
// Their constructors take what kafkajs's own code passes (its type declarations are narrower).
type ErrorClass<A extends unknown[]> = new (...args: A) => Error
const { KafkaJSNonRetriableError, KafkaJSNumberOfRetriesExceeded, KafkaJSConnectionError, KafkaJSSASLAuthenticationError } = kafkajs as unknown as {
  KafkaJSNonRetriableError: ErrorClass<[Error, { cause: Error }]>
  KafkaJSNumberOfRetriesExceeded: ErrorClass<[Error, { retryCount: number, retryTime: number }]>
  KafkaJSConnectionError: ErrorClass<[string, { code: string }]>
  KafkaJSSASLAuthenticationError: ErrorClass<[string]>
}
const require = createRequire(import.meta.url)
const { createErrorFromCode } = require('kafkajs/src/protocol/error') as { createErrorFromCode: (code: number) => Error }

/** platformatic's answer to a request whose response carries `code` (as ResponseError builds it). */
function platformaticResponse (code: number): Error {
  return new ResponseError(3, 12, { '/topics/0': [code, null] }, {})
}

/** platformatic's "could not connect" wrapping a cause, as its metadata retries report it. */
function platformaticConnectFailure (cause: Error): Error {
  const attempt = new MultipleErrors('Cannot connect to any broker.', [new NetworkError('Connection to 127.0.0.1:9093 failed.', { cause })])
  return new MultipleErrors('metadata failed 3 times.', [attempt, attempt, attempt])
}

function tlsError (code: string, message: string): Error {
  return Object.assign(new Error(message), { code })
}

test('topic-level refusals come from the response code of either client', () => {
  for (const [code, kind, type] of [
    [29, 'topic', 'TOPIC_AUTHORIZATION_FAILED'],
    [17, 'topic', 'INVALID_TOPIC_EXCEPTION'],
    [10, 'size', 'MESSAGE_TOO_LARGE'],
    [18, 'size', 'RECORD_LIST_TOO_LARGE'],
    [87, 'record', 'INVALID_RECORD'],
    [3, 'pending', 'UNKNOWN_TOPIC_OR_PARTITION'],
    [5, 'pending', 'LEADER_NOT_AVAILABLE'],
  ] as const) {
    assert.deepEqual(classifyKafkaError(platformaticResponse(code)), { kind, type }, `platformatic ${code}`)
    const inner = createErrorFromCode(code)
    const kafkajs = new KafkaJSNonRetriableError(inner, { cause: inner })
    assert.deepEqual(classifyKafkaError(kafkajs), { kind, type }, `kafkajs ${code}`)
  }
})

test('the code decides, not the text: a message that reads like a refusal is not one', () => {
  const lying = new ProtocolError(7) // REQUEST_TIMED_OUT
  lying.message = 'Topic authorization failed.'
  assert.deepEqual(classifyKafkaError(lying), { kind: 'broker', security: null })
  assert.deepEqual(classifyKafkaError(new Error('TOPIC_AUTHORIZATION_FAILED')), { kind: 'broker', security: null })
  // kahets's own refusals name the protocol error they stand for.
  assert.deepEqual(classifyKafkaError(new TopicRefusal('INVALID_TOPIC_EXCEPTION', 'x')), { kind: 'topic', type: 'INVALID_TOPIC_EXCEPTION' })
  assert.deepEqual(classifyKafkaError(new TopicRefusal('LEADER_NOT_AVAILABLE', 'x', new UserError('y'))), { kind: 'pending', type: 'LEADER_NOT_AVAILABLE' })
})

test('a refused SASL password is an authentication failure, from either client', () => {
  const platformatic = platformaticConnectFailure(new AuthenticationError('SASL authentication failed.', { cause: new ResponseError(36, 2, { '': [58, 'Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512'] }, {}) }))
  const p = classifyKafkaError(platformatic)
  assert.ok(p.kind === 'broker' && p.security !== null)
  assert.equal(p.security.kind, 'authentication')
  assert.equal(p.security.code, 'SASL_AUTHENTICATION_FAILED')
  assert.match(p.security.reason, /invalid credentials with SASL mechanism SCRAM-SHA-512/)
  const kafkajs = classifyKafkaError(new KafkaJSSASLAuthenticationError('SASL PLAIN authentication failed: Authentication failed: Invalid username or password'))
  assert.ok(kafkajs.kind === 'broker' && kafkajs.security?.kind === 'authentication')
  // The whole stream's error names the stream and the reason, with its own code.
  const err = streamUnavailable('secure', platformatic)
  assert.equal(err.code, ErrorCodes.KAFKA_AUTHENTICATION_FAILED)
  assert.equal(err.retriable, true)
  assert.match(err.message, /^kafka stream secure: SASL authentication failed/)
  assert.doesNotMatch(err.message, /failed 3 times/)
})

test('TLS failures are read from Node\'s codes: untrusted, wrong host, refused by the broker', () => {
  const cases = [
    ['SELF_SIGNED_CERT_IN_CHAIN', /not trusted.*ssl\.ca\.location/],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', /not trusted/],
    ['ERR_TLS_CERT_ALTNAME_INVALID', /does not name the host.*ssl\.endpoint\.identification\.algorithm=none/],
    ['CERT_HAS_EXPIRED', /expired/],
    ['ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', /refused the handshake.*client certificate/],
    ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', /refused the handshake/],
  ] as const
  for (const [code, reason] of cases) {
    const platformatic = classifyKafkaError(platformaticConnectFailure(tlsError(code, 'x')))
    assert.ok(platformatic.kind === 'broker' && platformatic.security?.kind === 'tls', code)
    assert.equal(platformatic.security.code, code)
    assert.match(platformatic.security.reason, reason)
    const kafkajs = classifyKafkaError(new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError('Connection error: x', { code }), { retryCount: 1, retryTime: 300 }))
    assert.ok(kafkajs.kind === 'broker' && kafkajs.security?.code === code, `kafkajs ${code}`)
    assert.equal(streamUnavailable('s', platformaticConnectFailure(tlsError(code, 'x'))).code, ErrorCodes.KAFKA_TLS_FAILED)
  }
})

test('a broker that is simply not answering stays a plain outage', () => {
  const refused = platformaticConnectFailure(tlsError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:9093'))
  assert.deepEqual(classifyKafkaError(refused), { kind: 'broker', security: null })
  const err = streamUnavailable('k', refused)
  assert.equal(err.code, ErrorCodes.STREAM_UNAVAILABLE)
  assert.match(err.message, /^kafka stream k unavailable/)
  assert.deepEqual(classifyKafkaError(new KafkaJSConnectionError('Connection error: x', { code: 'ECONNREFUSED' })), { kind: 'broker', security: null })
  assert.deepEqual(classifyKafkaError(undefined), { kind: 'broker', security: null })
})
