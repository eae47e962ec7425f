// One Kafka broker with every security listener kahets supports (docs/kafka-security.md), for
// test/integration/kafka-security.test.ts. Started through scripts/kafka.sh's hooks
// (KAFKA_EXTRA_CONFIG for listeners and the authorizer, KAFKA_FORMAT_ARGS for SCRAM users):
//
//   PLAINTEXT       KAFKA_PORT: the tests' admin (principal ANONYMOUS, a super user, as the
//                   broker and the controller themselves)
//   SSL             client certificate required (principal User:CN=kahets-client)
//   SASL_SSL        SCRAM-SHA-256 and SCRAM-SHA-512, server certificate only
//   SASL_PLAINTEXT  PLAIN
//   WRONGHOST       SSL with a certificate for wrong-host.invalid: fails the host name check
//
// StandardAuthorizer is on and denies what no ACL allows: the SASL user and the client
// certificate may create, write, describe and read topics starting with ALLOWED_PREFIX only.
import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import kafkajs, { Kafka, logLevel } from 'kafkajs'
import { startBroker, type Broker } from './broker.ts'
import { makeTempDir } from './kahets.ts'
import { freePort } from './ports.ts'
import { CLIENT_PRINCIPAL, makeTestPki, type TestPki } from './tls.ts'

// Node's named-export detection does not find these in kafkajs's CommonJS index.
const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, ResourcePatternTypes } = kafkajs

export const SASL_USER = 'alice'
export const SASL_PASSWORD = 'alice-secret'
export const ALLOWED_PREFIX = 'allowed-'

export interface SecureBroker {
  readonly broker: Broker
  readonly pki: TestPki
  /** 127.0.0.1:port of each listener. */
  readonly plaintext: string
  readonly ssl: string
  readonly saslSsl: string
  readonly saslPlaintext: string
  readonly wrongHost: string
}

function properties (pki: TestPki, ports: Record<'ssl' | 'saslSsl' | 'saslPlaintext' | 'wrongHost', number>, plaintext: number, controller: number): string {
  const at = (name: string, port: number): string => `${name}://127.0.0.1:${port}`
  const secure = [at('SSL', ports.ssl), at('SASL_SSL', ports.saslSsl), at('SASL_PLAINTEXT', ports.saslPlaintext), at('WRONGHOST', ports.wrongHost)]
  const scram = 'org.apache.kafka.common.security.scram.ScramLoginModule required;'
  return [
    `listeners=${[at('PLAINTEXT', plaintext), at('CONTROLLER', controller), ...secure].join(',')}`,
    `advertised.listeners=${[at('PLAINTEXT', plaintext), ...secure].join(',')}`,
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,WRONGHOST:SSL',
    'authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer',
    // The broker and the controller talk PLAINTEXT among themselves: ANONYMOUS is their principal.
    'super.users=User:ANONYMOUS',
    'allow.everyone.if.no.acl.found=false',
    'ssl.truststore.type=PEM',
    `ssl.truststore.location=${pki.caFile}`,
    'ssl.keystore.type=PKCS12',
    `ssl.keystore.location=${pki.brokerKeystore}`,
    `ssl.keystore.password=${pki.keystorePassword}`,
    `ssl.key.password=${pki.keystorePassword}`,
    'listener.name.ssl.ssl.client.auth=required',
    `listener.name.wronghost.ssl.keystore.location=${pki.wrongHostKeystore}`,
    `listener.name.wronghost.ssl.keystore.password=${pki.keystorePassword}`,
    `listener.name.wronghost.ssl.key.password=${pki.keystorePassword}`,
    'sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512',
    'listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512',
    `listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=${scram}`,
    `listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=${scram}`,
    'listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN',
    `listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${SASL_USER}="${SASL_PASSWORD}";`,
    '',
  ].join('\n')
}

/** Allows `principal` everything kahets and kcat need on the topics starting with ALLOWED_PREFIX. */
async function allowPrefix (admin: ReturnType<Kafka['admin']>, principal: string): Promise<void> {
  const ops = [AclOperationTypes.CREATE, AclOperationTypes.WRITE, AclOperationTypes.DESCRIBE, AclOperationTypes.READ]
  await admin.createAcls({
    acl: ops.map((operation) => ({
      resourceType: AclResourceTypes.TOPIC,
      resourceName: ALLOWED_PREFIX,
      resourcePatternType: ResourcePatternTypes.PREFIXED,
      principal,
      host: '*',
      operation,
      permissionType: AclPermissionTypes.ALLOW,
    })),
  })
}

/** Starts the broker (with its certificates, users and ACLs); torn down after the file's tests. */
export async function startSecureBroker (): Promise<SecureBroker> {
  const dir = await makeTempDir('kahets-pki-')
  const pki = await makeTestPki(dir)
  const ports = { ssl: await freePort(), saslSsl: await freePort(), saslPlaintext: await freePort(), wrongHost: await freePort() }
  const extra = join(dir, 'security.properties')
  // The listeners line names the PLAINTEXT and controller ports too, so they are chosen here.
  const plaintext = await freePort()
  const controller = await freePort()
  await writeFile(extra, properties(pki, ports, plaintext, controller))
  const user = (mechanism: string): string => `--add-scram ${mechanism}=[name=${SASL_USER},password=${SASL_PASSWORD}]`
  // KAFKA_CONTROLLER_PORT here wins over the one startBroker picks (its Broker.controllerPort
  // is then not this broker's; nothing here reads it).
  const broker = await startBroker({
    port: plaintext,
    env: { KAFKA_CONTROLLER_PORT: String(controller), KAFKA_EXTRA_CONFIG: extra, KAFKA_FORMAT_ARGS: `${user('SCRAM-SHA-256')} ${user('SCRAM-SHA-512')}` },
  })
  const admin = new Kafka({ clientId: 'kahets-test-admin', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  try {
    await allowPrefix(admin, `User:${SASL_USER}`)
    await allowPrefix(admin, CLIENT_PRINCIPAL)
  } finally {
    await admin.disconnect()
  }
  const addr = (port: number): string => `127.0.0.1:${port}`
  return {
    broker,
    pki,
    plaintext: broker.bootstrap,
    ssl: addr(ports.ssl),
    saslSsl: addr(ports.saslSsl),
    saslPlaintext: addr(ports.saslPlaintext),
    wrongHost: addr(ports.wrongHost),
  }
}

/**
 * Everything in `topic` read by kcat (librdkafka) with the given librdkafka settings, i.e. over
 * the listener and as the principal under test; one `%k=%s\n` line per message.
 */
export function kcatReadAs (bootstrap: string, topic: string, config: Record<string, string>, timeoutMs = 60_000): Promise<string> {
  const args = ['-C', '-b', bootstrap, '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%k=%s\\n']
  for (const [k, v] of Object.entries(config)) args.push('-X', `${k}=${v}`)
  return new Promise((resolve, reject) => {
    execFile('kcat', args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`kcat ${args.join(' ')}: ${err.message}\n${stderr}`))
      else resolve(stdout)
    })
  })
}
