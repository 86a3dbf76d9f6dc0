import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { writeFileAtomic } from "../../src/platform/AtomicFile.ts"

describe("writeFileAtomic", () => {
  it("creates (0600, parent 0700) and replaces a file, from a string or pieces, leaving no temp files", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "beamclaw-atomic-"))
    try {
      const file = path.join(dir, "state", "x.json")
      await writeFileAtomic(file, "first\n")
      assert.strictEqual(await fs.readFile(file, "utf8"), "first\n")
      assert.strictEqual((await fs.stat(file)).mode & 0o777, 0o600)
      assert.strictEqual((await fs.stat(path.dirname(file))).mode & 0o777, 0o700)
      await writeFileAtomic(file, ["a", "b", "c\n"])
      assert.strictEqual(await fs.readFile(file, "utf8"), "abc\n")
      assert.deepStrictEqual(await fs.readdir(path.dirname(file)), ["x.json"])
    } finally {
      await fs.rm(dir, { recursive: true, force: true })
    }
  })

  it("a failed write leaves the old file whole and no temp file behind", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "beamclaw-atomic-"))
    try {
      const file = path.join(dir, "x.json")
      await writeFileAtomic(file, "old\n")
      const failing = (function*() {
        yield "partial"
        throw new Error("the data ran out")
      })()
      await writeFileAtomic(file, failing).then(() => assert.fail("expected a failure"), (error: unknown) => assert.include(String(error), "ran out"))
      assert.strictEqual(await fs.readFile(file, "utf8"), "old\n")
      assert.deepStrictEqual(await fs.readdir(dir), ["x.json"])
    } finally {
      await fs.rm(dir, { recursive: true, force: true })
    }
  })
})
