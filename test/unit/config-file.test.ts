// Configuration paths a careless operator gets wrong (src/config/config-file.ts): a named pipe,
// a symlink to /dev/zero, a directory, a huge file, given as the buckets file, an env file, a
// payload schema or a CA file. Each is a clear configuration error at its path; none blocks or
// exhausts kahets. Run in a child Node, killed after 30 s: opening a named pipe used to wait
// for a writer, and reading /dev/zero never ends.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir, symlink, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runInChild } from '../helpers/child-node.ts'
import { makeTempDir } from '../helpers/kahets.ts'

test('a named pipe, /dev/zero, a directory or a 17 MB file as a configuration file: an error saying which, at once', async () => {
  const dir = await makeTempDir('kahets-config-file-')
  execFileSync('mkfifo', [join(dir, 'pipe')])
  await symlink('/dev/zero', join(dir, 'zero'))
  await mkdir(join(dir, 'folder'))
  await writeFile(join(dir, 'huge'), '')
  await truncate(join(dir, 'huge'), 17 * 1024 * 1024)
  const buckets = (schema: string, ca: string): string => JSON.stringify({
    streamsConfigs: { k: { type: 'kafka', settings: { 'bootstrap.servers': '127.0.0.1:9093', 'security.protocol': 'SSL', 'ssl.ca.location': ca } } },
    buckets: [{ id: 'a', streams: ['k'], schema }],
  })
  await writeFile(join(dir, 'with-pipes.json'), buckets('pipe', join(dir, 'pipe')))
  await writeFile(join(dir, 'with-zero.json'), buckets('zero', join(dir, 'zero')))

  const out = await runInChild(`
    import { loadBucketsFile } from './src/config/buckets.ts'
    import { loadEnv } from './src/config/env.ts'
    const dir = ${JSON.stringify(dir)}
    const problems = (f) => { try { f(); return [] } catch (err) { return err.problems.map((p) => p.path + ': ' + p.message) } }
    console.log(JSON.stringify({
      bucketsFile: ['pipe', 'zero', 'folder', 'huge'].flatMap((name) => problems(() => loadBucketsFile(dir + '/' + name))),
      referenced: [...problems(() => loadBucketsFile(dir + '/with-pipes.json')), ...problems(() => loadBucketsFile(dir + '/with-zero.json'))],
      envFile: ['pipe', 'zero'].flatMap((name) => problems(() => loadEnv({ cwd: dir, env: {}, envFile: name }))),
    }))`)
  const found = JSON.parse(out) as Record<string, string[]>
  assert.deepEqual(found.bucketsFile, [
    `${dir}/pipe: cannot read buckets file: a named pipe, not a regular file`,
    `${dir}/zero: cannot read buckets file: a character device, not a regular file`,
    `${dir}/folder: cannot read buckets file: a directory, not a regular file`,
    `${dir}/huge: cannot read buckets file: 17825792 bytes, more than the 16 MB a configuration file may hold`,
  ])
  const at = '$.streamsConfigs.k.settings["ssl.ca.location"]'
  assert.deepEqual(found.referenced, [
    `${at}: cannot read CA file ${dir}/pipe: a named pipe, not a regular file`,
    `$.buckets[0].schema: cannot read schema file ${dir}/pipe: a named pipe, not a regular file`,
    `${at}: cannot read CA file ${dir}/zero: a character device, not a regular file`,
    `$.buckets[0].schema: cannot read schema file ${dir}/zero: a character device, not a regular file`,
  ])
  assert.deepEqual(found.envFile, [
    `${dir}/pipe: cannot read: a named pipe, not a regular file`,
    `${dir}/zero: cannot read: a character device, not a regular file`,
  ])
})
