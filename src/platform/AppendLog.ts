/**
 * An append-only log file with group commit: appends are queued, and one
 * writer writes everything queued in one go and, when any of it asked to be
 * durable, covers the lot with one `fdatasync`. Appends that arrive while a
 * write or sync is in flight form the next batch, so a burst of concurrent
 * durable appends costs one sync, not one each, and throughput stays.
 *
 * A non-durable append resolves once its bytes are written (a process crash
 * keeps them; a power cut may not); a durable one once they are on disk.
 * `replace` swaps the whole file atomically (temp, fsync, rename, directory
 * fsync) in order with the appends, and later appends go to the new file.
 *
 * A write that fails partway leaves a torn line; the next batch then starts
 * with a newline, so the torn line stays alone (readers skip it) and the
 * records after it stay readable. `close` refuses every append made after
 * it was called, so nothing is written to a closed handle.
 *
 * Plain promises, not an Effect service: a write that has started is
 * finished whoever stops waiting for it (half a batch would be a torn file),
 * so there is nothing for interruption to cancel.
 */
import * as fs from "node:fs/promises"
import { writeFileAtomic } from "./AtomicFile.ts"

export interface AppendLog {
  readonly file: string
  /** Appends whole lines (each ending in `\n`); resolves when written, or with `durable` when synced. */
  readonly append: (data: string, durable?: boolean) => Promise<void>
  /** Replaces the file's content after the appends queued so far; `content` is read when the swap runs. */
  readonly replace: (content: () => string) => Promise<void>
  /** Writes what is queued, then closes the file. Appends after this fail. */
  readonly close: () => Promise<void>
  /** Batches written and syncs made, for tests and benchmarks. */
  readonly stats: () => { readonly writes: number; readonly syncs: number }
}

/** The part of a `fs.FileHandle` the log uses. */
export interface LogHandle {
  readonly writeFile: (data: string, encoding: "utf8") => Promise<void>
  readonly datasync: () => Promise<void>
  readonly close: () => Promise<void>
}

export interface AppendLogOptions {
  readonly mode?: number
  /** Opens the file for appending; a test hands in a handle whose disk fails. */
  readonly open?: (file: string, mode: number) => Promise<LogHandle>
}

const openForAppend = (file: string, mode: number): Promise<LogHandle> => fs.open(file, "a", mode)

interface Waiter {
  readonly resolve: () => void
  readonly reject: (error: unknown) => void
}

type Op =
  | { readonly _tag: "append"; readonly data: string; readonly durable: boolean; readonly waiter: Waiter }
  | { readonly _tag: "replace"; readonly content: () => string; readonly waiter: Waiter }

export const openAppendLog = async (file: string, options: AppendLogOptions = {}): Promise<AppendLog> => {
  const mode = options.mode ?? 0o600
  const open = options.open ?? openForAppend
  let handle = await open(file, mode)
  let queue: Array<Op> = []
  let running: Promise<void> | undefined
  let closing: Promise<void> | undefined
  // After a failed write the file may end in part of a line: the next batch starts on a fresh one.
  let torn = false
  let writes = 0
  let syncs = 0

  /** Writes a run of appends: one write, then one sync if any of them must be durable. */
  const writeBatch = async (batch: ReadonlyArray<Extract<Op, { _tag: "append" }>>) => {
    const durable = batch.some((op) => op.durable)
    const data = batch.length === 1 ? batch[0]?.data ?? "" : batch.map((op) => op.data).join("")
    if (data === "") {
      for (const op of batch) op.waiter.resolve()
      return
    }
    try {
      // FileHandle.writeFile writes the whole string (it loops over short writes); with O_APPEND each part lands at the end.
      await handle.writeFile(torn ? "\n" + data : data, "utf8")
      torn = false
      writes++
    } catch (error) {
      torn = true
      for (const op of batch) op.waiter.reject(error)
      return
    }
    for (const op of batch) if (!op.durable) op.waiter.resolve()
    if (!durable) return
    try {
      await handle.datasync()
      syncs++
      for (const op of batch) if (op.durable) op.waiter.resolve()
    } catch (error) {
      for (const op of batch) if (op.durable) op.waiter.reject(error)
    }
  }

  const runReplace = async (op: Extract<Op, { _tag: "replace" }>) => {
    try {
      await writeFileAtomic(file, op.content(), { mode })
      const previous = handle
      handle = await open(file, mode)
      torn = false
      await previous.close().catch(() => undefined)
      op.waiter.resolve()
    } catch (error) {
      op.waiter.reject(error)
    }
  }

  const pump = async () => {
    try {
      while (queue.length > 0) {
        const ops = queue
        queue = []
        let i = 0
        while (i < ops.length) {
          const op = ops[i]
          if (op === undefined) break
          if (op._tag === "replace") {
            await runReplace(op)
            i++
            continue
          }
          const batch: Array<Extract<Op, { _tag: "append" }>> = []
          while (i < ops.length) {
            const next = ops[i]
            if (next === undefined || next._tag !== "append") break
            batch.push(next)
            i++
          }
          await writeBatch(batch)
        }
      }
    } finally {
      running = undefined
    }
  }

  const enqueue = (make: (waiter: Waiter) => Op) =>
    new Promise<void>((resolve, reject) => {
      if (closing !== undefined) return reject(new Error(`${file} is closed`))
      queue.push(make({ resolve, reject }))
      if (running === undefined) running = pump()
    })

  return {
    file,
    append: (data, durable = false) => enqueue((waiter) => ({ _tag: "append", data, durable, waiter })),
    replace: (content) => enqueue((waiter) => ({ _tag: "replace", content, waiter })),
    close: () => {
      // Refused from now on, so the queue only shrinks; the handle is closed once the writer has drained it.
      closing ??= (async () => {
        while (running !== undefined) await running
        await handle.close().catch(() => undefined)
      })()
      return closing
    },
    stats: () => ({ writes, syncs })
  }
}
