/**
 * The group-commit append log under the channel journal and the inbound
 * de-dupe: order, durability batching, atomic replacement in order with the
 * appends, close, and a failing disk.
 */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, assert, beforeEach, describe, it } from "@effect/vitest"
import { type LogHandle, openAppendLog } from "../../src/platform/AppendLog.ts"

let dir: string
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "beamclaw-appendlog-"))
})
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true })
})

describe("AppendLog", () => {
  it("concurrent durable appends land in order and share syncs", async () => {
    const file = path.join(dir, "log.jsonl")
    const log = await openAppendLog(file)
    await Promise.all(Array.from({ length: 200 }, (_, i) => log.append(`${i}\n`, true)))
    const lines = (await fs.readFile(file, "utf8")).trim().split("\n")
    assert.deepStrictEqual(lines, Array.from({ length: 200 }, (_, i) => String(i)))
    const { writes, syncs } = log.stats()
    assert.isAtLeast(syncs, 1)
    assert.isAtMost(syncs, 3, `200 concurrent appends, ${syncs} syncs: they must be grouped`)
    assert.strictEqual(syncs, writes, "every batch held a durable append")
    await log.close()
  })

  it("appends that are not durable are written but never synced; one durable append in a batch syncs it", async () => {
    const file = path.join(dir, "log.jsonl")
    const log = await openAppendLog(file)
    for (let i = 0; i < 5; i++) await log.append(`plain ${i}\n`)
    assert.strictEqual(log.stats().syncs, 0)
    assert.strictEqual((await fs.readFile(file, "utf8")).split("\n").length, 6, "written before the promise resolved")
    await Promise.all([log.append("a\n"), log.append("b\n", true), log.append("c\n")])
    assert.strictEqual(log.stats().syncs, 1)
    await log.close()
  })

  it("replace swaps the file after the appends queued before it; later appends go to the new file", async () => {
    const file = path.join(dir, "log.jsonl")
    const log = await openAppendLog(file)
    let snapshot = "kept\n"
    const done = Promise.all([
      log.append("old 1\n"),
      log.append("old 2\n"),
      log.replace(() => snapshot),
      log.append("new 1\n", true)
    ])
    // The content is read when the swap runs, not when it was asked for.
    snapshot = "kept late\n"
    await done
    assert.strictEqual(await fs.readFile(file, "utf8"), "kept late\nnew 1\n")
    const names = await fs.readdir(dir)
    assert.deepStrictEqual(names, ["log.jsonl"], "no temp file left behind")
    await log.close()
  })

  it("close writes what is queued; appends after it fail", async () => {
    const file = path.join(dir, "log.jsonl")
    const log = await openAppendLog(file)
    const pending = log.append("last words\n")
    await log.close()
    await pending
    assert.strictEqual(await fs.readFile(file, "utf8"), "last words\n")
    let error: unknown
    await log.append("too late\n").catch((e: unknown) => {
      error = e
    })
    assert.match(String(error), /is closed/)
  })

  it("a failed swap rejects that request only; the log goes on", async () => {
    const file = path.join(dir, "log.jsonl")
    const log = await openAppendLog(file)
    await log.append("one\n")
    const failed = await log.replace(() => {
      throw new Error("no snapshot")
    }).then(() => undefined, (e: unknown) => e)
    assert.match(String(failed), /no snapshot/)
    await log.append("two\n", true)
    assert.strictEqual(await fs.readFile(file, "utf8"), "one\ntwo\n")
    await log.close()
  })

  it("a write that fails partway leaves its torn line alone: the next batch starts on a fresh line", async () => {
    const file = path.join(dir, "log.jsonl")
    let failNext = false
    // A disk that fills up halfway through a write: part of the bytes land, then the write fails (as ENOSPC does).
    const open = async (name: string, mode: number): Promise<LogHandle> => {
      const real = await fs.open(name, "a", mode)
      return {
        writeFile: async (data, encoding) => {
          if (!failNext) return real.writeFile(data, encoding)
          failNext = false
          await real.writeFile(data.slice(0, Math.floor(data.length / 2)), encoding)
          throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" })
        },
        datasync: () => real.datasync(),
        close: () => real.close()
      }
    }
    const log = await openAppendLog(file, { open })
    await log.append("{\"n\":1}\n", true)
    failNext = true
    const failed = await log.append("{\"n\":2,\"pad\":\"xxxxxxxx\"}\n", true).then(() => undefined, (e: unknown) => e)
    assert.match(String(failed), /ENOSPC/)
    await log.append("{\"n\":3}\n", true)
    await log.close()
    const lines = (await fs.readFile(file, "utf8")).split("\n").filter((line) => line !== "")
    assert.strictEqual(lines.length, 3)
    assert.strictEqual(lines[0], "{\"n\":1}")
    assert.strictEqual(lines[1], "{\"n\":2,\"pad\"", "the torn line stands alone")
    assert.deepStrictEqual(JSON.parse(lines[2] ?? ""), { n: 3 }, "the record after a torn write is whole")
  })

  it("an append made after close was called is refused, never written to the closed file", async () => {
    const file = path.join(dir, "log.jsonl")
    const log = await openAppendLog(file)
    const before = log.append("before\n")
    const closing = log.close()
    const late = await log.append("late\n").then(() => "written", (e: unknown) => String(e))
    const lateReplace = await log.replace(() => "swapped\n").then(() => "swapped", (e: unknown) => String(e))
    await before
    await closing
    await log.close()
    assert.match(late, /is closed/)
    assert.match(lateReplace, /is closed/)
    assert.strictEqual(await fs.readFile(file, "utf8"), "before\n")
  })
})
