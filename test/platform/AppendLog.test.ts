/**
 * The group-commit append log under the channel journal and the inbound
 * de-dupe: order, durability batching, atomic replacement in order with the
 * appends, close, and a failing disk.
 */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, assert, beforeEach, describe, it } from "@effect/vitest"
import { openAppendLog } from "../../src/platform/AppendLog.ts"

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
})
