/**
 * Replacing a file so a crash leaves the old content or the new, never half:
 * a temp file beside it (same filesystem), fsync, rename, then an fsync of the
 * directory so the rename itself survives a power cut. One implementation for
 * every small state file (pairing, inbound de-dupe, channel journals, config).
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"

export interface AtomicWriteOptions {
  /** File mode of the new file; default 0600 (state files hold ids and secrets). */
  readonly mode?: number | undefined
  /** Mode for a parent directory that has to be created; default 0700. */
  readonly directoryMode?: number | undefined
}

export const writeFileAtomic = async (file: string, data: string | Iterable<string>, options: AtomicWriteOptions = {}): Promise<void> => {
  const dir = path.dirname(file)
  await fs.mkdir(dir, { recursive: true, mode: options.directoryMode ?? 0o700 })
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`
  try {
    const handle = await fs.open(temporary, "wx", options.mode ?? 0o600)
    try {
      if (typeof data === "string") await handle.writeFile(data, "utf8")
      else for (const piece of data) await handle.write(piece, null, "utf8")
      await handle.sync()
    } finally {
      await handle.close()
    }
    await fs.rename(temporary, file)
  } catch (error) {
    await fs.rm(temporary, { force: true })
    throw error
  }
  // A failure here leaves a correct file, so it is not an error.
  const directory = await fs.open(dir, "r").catch(() => undefined)
  if (directory !== undefined) await directory.sync().catch(() => undefined).finally(() => directory.close())
}
