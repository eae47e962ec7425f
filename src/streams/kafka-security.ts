// What a kafka stream's TLS and SASL settings (src/config/kafka-security.ts) mean for a Node
// client: both @platformatic/kafka (`tls`) and kafkajs (`ssl`) pass these options to
// tls.connect(), so they are built once here (docs/kafka-security.md).
import type { ConnectionOptions } from 'node:tls'
import type { KafkaSettings } from '../config/buckets.ts'
import { CONNECTION_TIMEOUT_MS } from './kafka-timeouts.ts'

/**
 * How long a connection may take to be ready with TLS or SASL: the handshake verifies
 * certificates and SCRAM runs thousands of PBKDF2 rounds on both sides, 200-330 ms measured
 * on 2 shared cores under load, past CONNECTION_TIMEOUT_MS when several streams start at once
 * (four TLS streams at start never connected with 1 s). A refused connection still fails at once.
 */
export const SECURE_CONNECTION_TIMEOUT_MS = 5000

/** The connection timeout of a stream with these settings (both clients, probes included). */
export function connectionTimeoutMs (settings: KafkaSettings): number {
  return settings.ssl === null && settings.sasl === null ? CONNECTION_TIMEOUT_MS : SECURE_CONNECTION_TIMEOUT_MS
}

/** tls.connect() options for security.protocol ssl/sasl_ssl; null for plaintext/sasl_plaintext. */
export function tlsOptions (settings: KafkaSettings): ConnectionOptions | null {
  const ssl = settings.ssl
  if (ssl === null) return null
  const options: ConnectionOptions = {}
  // Without ssl.ca.location Node's own CA list applies, as librdkafka's system store does.
  if (ssl.ca !== null) options.ca = [ssl.ca]
  if (ssl.certificate !== null && ssl.key !== null) {
    options.cert = ssl.certificate
    options.key = ssl.key
    if (ssl.keyPassword !== null) options.passphrase = ssl.keyPassword
  }
  // ssl.endpoint.identification.algorithm=none: the chain is still verified, the name is not.
  if (!ssl.verifyHostname) options.checkServerIdentity = () => undefined
  return options
}

