// Certificates made at test time with openssl (docs/kafka-security.md): a CA, a broker
// certificate for localhost/127.0.0.1, a broker certificate for another host name (to test
// ssl.endpoint.identification.algorithm), a client certificate whose key is encrypted (to test
// ssl.key.password), and a second CA nobody trusts. Everything lives in a temp dir the caller
// owns; nothing is checked in, so no key outlives the test run.
import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface TestPki {
  readonly dir: string
  /** PEM of the CA that signed every certificate below: ssl.ca.location, the broker's truststore. */
  readonly caFile: string
  /** A CA that signed nothing here: as ssl.ca.location, the broker's certificate is untrusted. */
  readonly otherCaFile: string
  /** PKCS#12 keystore of the broker certificate for localhost and 127.0.0.1. */
  readonly brokerKeystore: string
  /** PKCS#12 keystore of a broker certificate for `wrong-host.invalid` only. */
  readonly wrongHostKeystore: string
  /** Password of both keystores. */
  readonly keystorePassword: string
  /** Client certificate (PEM), subject CN=kahets-client: principal User:CN=kahets-client. */
  readonly clientCert: string
  /** Its private key, PKCS#8 PEM encrypted with `clientKeyPassword`. */
  readonly clientKey: string
  readonly clientKeyPassword: string
  /** The same key unencrypted (for a client that takes no password). */
  readonly clientKeyPlain: string
  /** A client certificate from `otherCaFile`: the broker does not trust it. */
  readonly untrustedClientCert: string
  readonly untrustedClientKey: string
}

export const CLIENT_PRINCIPAL = 'User:CN=kahets-client'

async function openssl (dir: string, args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir })
}

async function makeCa (dir: string, name: string): Promise<void> {
  await openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`,
    '-days', '2', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
}

/** A certificate signed by `ca`, with the given subject and extensions (an openssl ext file). */
async function makeLeaf (dir: string, ca: string, name: string, subject: string, ext: string): Promise<void> {
  await writeFile(join(dir, `${name}.ext`), ext)
  await openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject])
  await openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`])
}

async function keystore (dir: string, name: string, ca: string, password: string): Promise<string> {
  await openssl(dir, ['pkcs12', '-export', '-in', `${name}.pem`, '-inkey', `${name}.key`, '-certfile', `${ca}.pem`,
    '-name', name, '-out', `${name}.p12`, '-passout', `pass:${password}`])
  return join(dir, `${name}.p12`)
}

/** Makes every file of a TestPki in `dir` (an existing, empty temp dir). About a second. */
export async function makeTestPki (dir: string): Promise<TestPki> {
  const keystorePassword = 'broker-store-secret'
  const clientKeyPassword = 'client-key-secret'
  await makeCa(dir, 'ca')
  await makeCa(dir, 'other-ca')
  const server = 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n'
  const client = 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n'
  await makeLeaf(dir, 'ca', 'broker', '/CN=localhost', `${server}subjectAltName=DNS:localhost,IP:127.0.0.1\n`)
  await makeLeaf(dir, 'ca', 'wrong-host', '/CN=wrong-host.invalid', `${server}subjectAltName=DNS:wrong-host.invalid\n`)
  await makeLeaf(dir, 'ca', 'client', '/CN=kahets-client', client)
  await makeLeaf(dir, 'other-ca', 'untrusted-client', '/CN=kahets-client', client)
  // ssl.key.password: the client key as PKCS#8 encrypted with AES-256 (what librdkafka and Node read).
  await openssl(dir, ['pkcs8', '-topk8', '-in', 'client.key', '-out', 'client-encrypted.key', '-v2', 'aes-256-cbc', '-passout', `pass:${clientKeyPassword}`])
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    otherCaFile: join(dir, 'other-ca.pem'),
    brokerKeystore: await keystore(dir, 'broker', 'ca', keystorePassword),
    wrongHostKeystore: await keystore(dir, 'wrong-host', 'ca', keystorePassword),
    keystorePassword,
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client-encrypted.key'),
    clientKeyPassword,
    clientKeyPlain: join(dir, 'client.key'),
    untrustedClientCert: join(dir, 'untrusted-client.pem'),
    untrustedClientKey: join(dir, 'untrusted-client.key'),
  }
}
