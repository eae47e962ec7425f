// Reading a configuration file (the buckets file, an env file, a payload schema, a CA or key
// file) whole, after checking it is one: a careless path must give a clear error, not hang or
// exhaust kahets. A named pipe would block the process at open and read until a writer
// comes (at a SIGHUP, every client with it); a symlink to /dev/zero would never end; a log
// file named by mistake could be gigabytes.
import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats } from 'node:fs'

/** The most a configuration file may hold: far above any real one, small enough to read whole. */
export const MAX_CONFIG_FILE_BYTES = 16 * 1024 * 1024

function kind (st: Stats): string {
  if (st.isDirectory()) return 'a directory'
  if (st.isFIFO()) return 'a named pipe'
  if (st.isCharacterDevice()) return 'a character device'
  if (st.isBlockDevice()) return 'a block device'
  if (st.isSocket()) return 'a socket'
  return 'not a regular file'
}

/** The file's bytes; throws, saying why (without the path), for anything but a regular file of at most 16 MB. */
export function readConfigFile (file: string): Buffer {
  // O_NONBLOCK: opening a named pipe for reading does not wait for a writer.
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw new Error(`${kind(st)}, not a regular file`)
    if (st.size > MAX_CONFIG_FILE_BYTES) throw new Error(`${st.size} bytes, more than the ${MAX_CONFIG_FILE_BYTES / 1024 / 1024} MB a configuration file may hold`)
    return readFileSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** readConfigFile as UTF-8 text. */
export function readConfigText (file: string): string {
  return readConfigFile(file).toString('utf8')
}
