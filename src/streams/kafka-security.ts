// What a kafka stream's TLS and SASL settings (src/config/kafka-security.ts) mean for a Node
// client: both @platformatic/kafka (`tls`) and kafkajs (`ssl`) pass these options to
// tls.connect(), so they are built once here (docs/kafka-security.md).
import type { ConnectionOptions } from 'node:tls'
import type { KafkaSettings } from '../config/buckets.ts'

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

