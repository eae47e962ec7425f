// A kafka stream's TLS and SASL settings (librdkafka's names; docs/kafka-security.md), checked
// once while the buckets file is parsed. Every file they name is read here, at start and at
// each SIGHUP, so a missing CA, a key that does not decrypt or does not match its certificate
// is a config error at its JSON path, and a reload naming one is refused whole before any
// stream exists. The stream gets the contents, never a path.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto'
import type { ConfigProblem } from '../errors.ts'
import { readConfigText } from './config-file.ts'

export type SecurityProtocol = 'plaintext' | 'ssl' | 'sasl_plaintext' | 'sasl_ssl'
export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512'

export interface SslSettings {
  /** ssl.ca.location and its PEM text; null: Node's default CAs. */
  readonly caLocation: string | null
  readonly ca: string | null
  /** ssl.certificate.location and its PEM text: the client certificate (with ssl.key.location). */
  readonly certificateLocation: string | null
  readonly certificate: string | null
  /** ssl.key.location and its PEM text (as written, possibly encrypted). */
  readonly keyLocation: string | null
  readonly key: string | null
  /** ssl.key.password: decrypts the key. */
  readonly keyPassword: string | null
  /** ssl.endpoint.identification.algorithm: https (default, as librdkafka ≥ 2.0) checks the broker's host name; none does not. */
  readonly verifyHostname: boolean
}

export interface SaslSettings {
  readonly mechanism: SaslMechanism
  readonly username: string
  readonly password: string
}

export interface SecuritySettings {
  readonly protocol: SecurityProtocol
  readonly ssl: SslSettings | null
  readonly sasl: SaslSettings | null
}

const SSL_KEYS = ['ssl.ca.location', 'ssl.certificate.location', 'ssl.key.location', 'ssl.key.password', 'ssl.endpoint.identification.algorithm']
const SASL_KEYS = ['sasl.mechanisms', 'sasl.mechanism', 'sasl.username', 'sasl.password']

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g

function readText (file: string, what: string, at: string, problems: ConfigProblem[]): string | null {
  try {
    return readConfigText(file)
  } catch (err) {
    problems.push({ path: at, message: `cannot read ${what} ${file}: ${(err as Error).message}` })
    return null
  }
}

/** The file's PEM certificates, each checked to parse; null (with a problem) otherwise. */
function readCertificates (file: string, what: string, at: string, problems: ConfigProblem[]): { text: string, first: X509Certificate } | null {
  const text = readText(file, what, at, problems)
  if (text === null) return null
  const pems = text.match(PEM_CERTIFICATE) ?? []
  if (pems.length === 0) {
    problems.push({ path: at, message: `${what} ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)` })
    return null
  }
  const parsed: X509Certificate[] = []
  for (const pem of pems) {
    try {
      parsed.push(new X509Certificate(pem))
    } catch (err) {
      problems.push({ path: at, message: `${what} ${file} holds a certificate that does not parse: ${(err as Error).message}` })
      return null
    }
  }
  return { text, first: parsed[0]! }
}

function readKey (file: string, password: string | null, at: string, problems: ConfigProblem[]): { text: string, key: KeyObject } | null {
  const text = readText(file, 'private key file', at, problems)
  if (text === null) return null
  try {
    return { text, key: createPrivateKey({ key: text, format: 'pem', ...(password === null ? {} : { passphrase: password }) }) }
  } catch (err) {
    // Read from the PEM's own markers (PKCS#8 or a legacy Proc-Type header), not from OpenSSL's text.
    const encrypted = text.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || /^Proc-Type: 4,ENCRYPTED$/m.test(text)
    const hint = encrypted && password === null
      ? 'it is encrypted: set ssl.key.password'
      : encrypted ? 'wrong ssl.key.password' : 'not a PEM private key'
    problems.push({ path: at, message: `cannot load private key ${file}: ${hint} (${(err as Error).message})` })
    return null
  }
}

/**
 * security.protocol and the settings that go with it. `raw` is the stream's settings object,
 * `at` its JSON path. Settings that the protocol does not use are named in `warnings`
 * (librdkafka ignores them too), so a forgotten security.protocol does not pass silently.
 */
export function securitySettings (raw: Record<string, unknown>, at: string, problems: ConfigProblem[], warnings: string[]): SecuritySettings {
  const str = (name: string): string | null => raw[name] === undefined ? null : String(raw[name])
  const path = (name: string): string => `${at}[${JSON.stringify(name)}]`
  const protocol = (str('security.protocol') ?? 'plaintext').toLowerCase() as SecurityProtocol
  const usesSsl = protocol === 'ssl' || protocol === 'sasl_ssl'
  const usesSasl = protocol === 'sasl_plaintext' || protocol === 'sasl_ssl'
  const ignored = [...(usesSsl ? [] : SSL_KEYS), ...(usesSasl ? [] : SASL_KEYS)].filter((k) => raw[k] !== undefined)
  if (ignored.length > 0) warnings.push(`${at}: security.protocol ${protocol} does not use ${ignored.join(', ')}; ignored`)

  let ssl: SslSettings | null = null
  if (usesSsl) {
    const caLocation = str('ssl.ca.location')
    const certificateLocation = str('ssl.certificate.location')
    const keyLocation = str('ssl.key.location')
    const keyPassword = str('ssl.key.password')
    const ca = caLocation === null ? null : readCertificates(caLocation, 'CA file', path('ssl.ca.location'), problems)
    const certificate = certificateLocation === null ? null : readCertificates(certificateLocation, 'certificate file', path('ssl.certificate.location'), problems)
    const key = keyLocation === null ? null : readKey(keyLocation, keyPassword, path('ssl.key.location'), problems)
    if (certificateLocation !== null && keyLocation === null) problems.push({ path: path('ssl.certificate.location'), message: 'a client certificate needs its private key: set ssl.key.location' })
    if (keyLocation !== null && certificateLocation === null) problems.push({ path: path('ssl.key.location'), message: 'a private key needs its client certificate: set ssl.certificate.location' })
    if (keyPassword !== null && keyLocation === null) problems.push({ path: path('ssl.key.password'), message: 'ssl.key.password without ssl.key.location' })
    if (certificate !== null && key !== null && !certificate.first.checkPrivateKey(key.key)) {
      problems.push({ path: path('ssl.key.location'), message: `private key ${keyLocation} does not belong to the certificate in ${certificateLocation}` })
    }
    const algorithm = (str('ssl.endpoint.identification.algorithm') ?? 'https').toLowerCase()
    if (algorithm !== 'https' && algorithm !== 'none') problems.push({ path: path('ssl.endpoint.identification.algorithm'), message: `not https or none: ${JSON.stringify(algorithm)}` })
    ssl = {
      caLocation,
      ca: ca?.text ?? null,
      certificateLocation,
      certificate: certificate?.text ?? null,
      keyLocation,
      key: key?.text ?? null,
      keyPassword,
      verifyHostname: algorithm !== 'none',
    }
  }

  let sasl: SaslSettings | null = null
  if (usesSasl) {
    const mechanism = (str('sasl.mechanisms') ?? str('sasl.mechanism') ?? 'PLAIN').toLowerCase() as SaslMechanism
    const username = str('sasl.username')
    const password = str('sasl.password')
    if (username === null) problems.push({ path: path('sasl.username'), message: `security.protocol ${protocol} needs sasl.username` })
    if (password === null) problems.push({ path: path('sasl.password'), message: `security.protocol ${protocol} needs sasl.password` })
    sasl = { mechanism, username: username ?? '', password: password ?? '' }
  }
  return { protocol, ssl, sasl }
}
