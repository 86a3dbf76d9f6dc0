import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as FileSessionStore from "../../src/session/FileSessionStore.ts"
import * as Transcript from "../../src/session/Transcript.ts"
import { type SessionEntry, SessionStore } from "../../src/session/SessionStore.ts"

const tempHome = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "beamclaw-index-"))),
  (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
)

const entry = (i: number): SessionEntry => ({
  sessionId: crypto.randomUUID(),
  agentId: "main",
  updatedAt: 1_795_620_834_860 + i,
  sessionStartedAt: 1_795_620_834_591,
  inputTokens: 1752,
  outputTokens: i,
  cacheRead: 0,
  cacheWrite: 0,
  totalTokens: 1752 + i,
  contextTokens: 1760,
  compactionCount: 0,
  turnCount: 1,
  model: "claude-sonnet-5-5",
  modelProvider: "anthropic",
  label: `label "${i}" \\ ünïcode`
})

const indexFile = (home: string) => path.join(home, "agents", "main", "sessions", "sessions.json")

describe("indexJsonChunks", () => {
  it("writes the same JSON as one stringify of the whole index, in pieces of about 64 KiB", () => {
    const index = new Map<string, SessionEntry>()
    for (let i = 0; i < 3000; i++) index.set(`agent:main:peer${i}`, entry(i))
    const chunks = [...FileSessionStore.indexJsonChunks(index)]
    assert.isAbove(chunks.length, 5)
    for (const chunk of chunks.slice(0, -1)) {
      assert.isAtLeast(chunk.length, 64 * 1024)
      assert.isBelow(chunk.length, 64 * 1024 + 1024, "a piece ends at the first entry past the size")
    }
    assert.deepStrictEqual(JSON.parse(chunks.join("")), JSON.parse(JSON.stringify(Object.fromEntries(index))))
  })

  it("writes an empty index as an empty object, and each pass starts afresh", () => {
    assert.deepStrictEqual([...FileSessionStore.indexJsonChunks(new Map())], ["{}"])
    const one = FileSessionStore.indexJsonChunks(new Map([["agent:main:main", entry(1)]]))
    assert.strictEqual([...one].join(""), [...one].join(""))
  })

  it("is a snapshot: entries changed after it was taken are not in it", () => {
    const index = new Map([["agent:main:a", entry(1)]])
    const chunks = FileSessionStore.indexJsonChunks(index)
    index.set("agent:main:b", entry(2))
    index.delete("agent:main:a")
    assert.deepStrictEqual(Object.keys(JSON.parse([...chunks].join(""))), ["agent:main:a"])
  })
})

describe("FileSessionStore index", () => {
  it.live("an index of many pieces is written whole and read back by a fresh store", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* tempHome
      const written = new Map<string, SessionEntry>()
      for (let i = 0; i < 3000; i++) written.set(`agent:main:peer${i}`, entry(i))
      yield* Effect.gen(function*() {
        const store = yield* SessionStore
        for (const [key, value] of written) yield* store.putEntry(key, value)
        yield* store.flush
      }).pipe(Effect.provide(FileSessionStore.layer({ home })))
      const text = yield* Effect.promise(() => fs.readFile(indexFile(home), "utf8"))
      assert.isAbove(text.length, 5 * 64 * 1024)
      const rows = yield* Effect.gen(function*() {
        const store = yield* SessionStore
        return yield* store.listEntries("main")
      }).pipe(Effect.provide(FileSessionStore.layer({ home })))
      assert.strictEqual(rows.length, written.size)
      for (const [key, value] of rows) assert.deepStrictEqual(value, written.get(key))
    })))

  it.live("an entry put while the index is being written reaches the file with the next flush", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* tempHome
      yield* Effect.gen(function*() {
        const store = yield* SessionStore
        for (let i = 0; i < 3000; i++) yield* store.putEntry(`agent:main:peer${i}`, entry(i))
        const writing = yield* Effect.forkChild(store.flush)
        yield* store.putEntry("agent:main:late", entry(9999))
        yield* store.deleteEntry("agent:main:peer0")
        yield* Fiber.join(writing)
        yield* store.flush
      }).pipe(Effect.provide(FileSessionStore.layer({ home })))
      const onDisk = JSON.parse(yield* Effect.promise(() => fs.readFile(indexFile(home), "utf8")))
      assert.strictEqual(onDisk["agent:main:late"]?.outputTokens, 9999)
      assert.isUndefined(onDisk["agent:main:peer0"])
      assert.strictEqual(Object.keys(onDisk).length, 3000)
    })))

  it("waits longer before rewriting a large index: 250 ms, or 1 ms per 20 entries when that is longer", () => {
    assert.strictEqual(FileSessionStore.flushDelayMs(0), 250)
    assert.strictEqual(FileSessionStore.flushDelayMs(5_000), 250)
    assert.strictEqual(FileSessionStore.flushDelayMs(20_000), 1_000)
    assert.strictEqual(FileSessionStore.flushDelayMs(100_000), 5_000)
  })

  it.effect("a small index is written 250 ms after a change, a large one only after its longer wait", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* tempHome
      const onDisk = () => fs.readFile(indexFile(home), "utf8").then((text) => Object.keys(JSON.parse(text)).length, () => 0)
      // Real time for the file write to finish once the (test) clock has let the flush start.
      const settle = (expected: number) =>
        Effect.promise(async () => {
          for (let i = 0; i < 200 && await onDisk() !== expected; i++) await new Promise((resolve) => setTimeout(resolve, 10))
          return onDisk()
        })
      yield* Effect.gen(function*() {
        const store = yield* SessionStore
        yield* store.putEntry("agent:main:first", entry(0))
        yield* TestClock.adjust("249 millis")
        assert.strictEqual(yield* Effect.promise(onDisk), 0)
        yield* TestClock.adjust("1 millis")
        assert.strictEqual(yield* settle(1), 1)

        for (let i = 0; i < 20_000; i++) yield* store.putEntry(`agent:main:peer${i}`, entry(i))
        yield* TestClock.adjust("999 millis")
        // Past the small index's 250 ms: nothing written yet.
        assert.strictEqual(yield* settle(20_001), 1)
        yield* TestClock.adjust("2 millis")
        assert.strictEqual(yield* settle(20_001), 20_001)
      }).pipe(Effect.provide(FileSessionStore.layer({ home })))
    })))

  describe("after an unclean stop, the index is completed from the transcripts", () => {
    const header = (key: string, id: string, timestamp: string): Transcript.Header => ({
      type: "session", version: Transcript.TRANSCRIPT_VERSION, id, timestamp, cwd: "", key, agentId: "main"
    })
    const started = (i: number) => 1_795_620_000_000 + i * 1000
    const withEntry = (key: string, id: string, i: number, extra: Partial<SessionEntry> = {}): readonly [string, SessionEntry] =>
      [key, { ...entry(i), sessionId: id, sessionStartedAt: started(i), ...extra }]
    /** Transcripts as the sessions left them, and a sessions.json from before the last changes (what a crash leaves). */
    const crashed = (home: string, transcripts: ReadonlyArray<readonly [string, string, number]>, archived: ReadonlyArray<readonly [string, "reset" | "deleted"]>, staleIndex: ReadonlyArray<readonly [string, SessionEntry]>) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        for (const [key, id, i] of transcripts) yield* store.createTranscript("main", header(key, id, new Date(started(i)).toISOString()))
        for (const [id, reason] of archived) yield* store.archiveTranscript("main", id, reason)
      }).pipe(
        Effect.provide(FileSessionStore.layer({ home })),
        Effect.andThen(Effect.promise(() => fs.writeFile(indexFile(home), JSON.stringify(Object.fromEntries(staleIndex)))))
      )
    const reload = (home: string) =>
      Effect.gen(function*() {
        const store = yield* SessionStore
        const rows = new Map(yield* store.listEntries("main"))
        yield* store.flush
        return rows
      }).pipe(Effect.provide(FileSessionStore.layer({ home })))

    it.live("a session created after the last write is put back; one reset after it takes its new id and keeps its label", () =>
      Effect.scoped(Effect.gen(function*() {
        const home = yield* tempHome
        yield* crashed(
          home,
          [["agent:main:kept", "s-kept", 1], ["agent:main:old", "s-old-1", 2], ["agent:main:old", "s-old-2", 5], ["agent:main:new", "s-new", 6]],
          [["s-old-1", "reset"]],
          [withEntry("agent:main:kept", "s-kept", 1), withEntry("agent:main:old", "s-old-1", 2, { label: "mine" })]
        )
        const rows = yield* reload(home)
        assert.deepStrictEqual([...rows.keys()].sort(), ["agent:main:kept", "agent:main:new", "agent:main:old"])
        assert.strictEqual(rows.get("agent:main:new")?.sessionId, "s-new")
        assert.strictEqual(rows.get("agent:main:old")?.sessionId, "s-old-2")
        assert.strictEqual(rows.get("agent:main:old")?.label, "mine")
        // The entry the index had is kept as it was (its counters are not rebuilt).
        assert.strictEqual(rows.get("agent:main:kept")?.outputTokens, 1)
        // And the repaired index was written back.
        const onDisk = JSON.parse(yield* Effect.promise(() => fs.readFile(indexFile(home), "utf8")))
        assert.strictEqual(onDisk["agent:main:new"]?.sessionId, "s-new")
      })))

    it.live("a session deleted and then started again after the last write is put back without the deleted one's label or route", () =>
      Effect.scoped(Effect.gen(function*() {
        const home = yield* tempHome
        yield* crashed(
          home,
          [["agent:main:a", "s-a-1", 1], ["agent:main:a", "s-a-2", 5]],
          [["s-a-1", "deleted"]],
          [withEntry("agent:main:a", "s-a-1", 1, { label: "deleted one", lastChannel: "telegram", lastTo: "42" })]
        )
        const rows = yield* reload(home)
        assert.strictEqual(rows.get("agent:main:a")?.sessionId, "s-a-2")
        assert.isUndefined(rows.get("agent:main:a")?.label, "a deleted session's label does not pass to the next one")
        assert.isUndefined(rows.get("agent:main:a")?.lastChannel)
        assert.isUndefined(rows.get("agent:main:a")?.lastTo)
      })))

    it.live("a session reset after the last write, whose new session had no transcript yet, moves to a fresh id (never the archived one's again)", () =>
      Effect.scoped(Effect.gen(function*() {
        const home = yield* tempHome
        yield* crashed(
          home,
          [["agent:main:r", "s-r-1", 1]],
          [["s-r-1", "reset"]],
          [withEntry("agent:main:r", "s-r-1", 1, { label: "keep me", turnCount: 7, outputTokens: 99 })]
        )
        const rows = yield* reload(home)
        const row = rows.get("agent:main:r")
        assert.isDefined(row)
        assert.notStrictEqual(row?.sessionId, "s-r-1", "the archived session's id is not used again")
        assert.strictEqual(row?.label, "keep me", "what a reset keeps")
        assert.strictEqual(row?.turnCount, 0, "a fresh session's counters")
        assert.strictEqual(row?.outputTokens, 0)
      })))

    it.live("read-only, a stale index is shown completed but nothing is written", () =>
      Effect.scoped(Effect.gen(function*() {
        const home = yield* tempHome
        yield* crashed(home, [["agent:main:a", "s-a", 1], ["agent:main:b", "s-b", 2]], [], [withEntry("agent:main:a", "s-a", 1)])
        const before = yield* Effect.promise(() => fs.readFile(indexFile(home), "utf8"))
        const rows = yield* Effect.gen(function*() {
          const store = yield* SessionStore
          const rows = new Map(yield* store.listEntries("main"))
          yield* store.flush
          return rows
        }).pipe(Effect.provide(FileSessionStore.layer({ home, readOnly: true })))
        assert.deepStrictEqual([...rows.keys()].sort(), ["agent:main:a", "agent:main:b"])
        assert.strictEqual(yield* Effect.promise(() => fs.readFile(indexFile(home), "utf8")), before)
        const names = yield* Effect.promise(() => fs.readdir(path.dirname(indexFile(home))))
        assert.deepStrictEqual(names.sort(), ["s-a.jsonl", "s-b.jsonl", "sessions.json"])
      })))

    it.live("entries put while the index is first loaded by several callers at once are all kept", () =>
      Effect.scoped(Effect.gen(function*() {
        const home = yield* tempHome
        yield* crashed(home, [["agent:main:a", "s-a", 1], ["agent:main:b", "s-b", 2]], [], [withEntry("agent:main:a", "s-a", 1)])
        const rows = yield* Effect.gen(function*() {
          const store = yield* SessionStore
          yield* Effect.all(
            Array.from({ length: 8 }, (_, i) => store.putEntry(`agent:main:p${i}`, entry(i))),
            { concurrency: "unbounded", discard: true }
          )
          return new Map(yield* store.listEntries("main"))
        }).pipe(Effect.provide(FileSessionStore.layer({ home })))
        for (let i = 0; i < 8; i++) assert.isDefined(rows.get(`agent:main:p${i}`), `agent:main:p${i}`)
        assert.strictEqual(rows.size, 10)
      })))

    it.live("a session deleted after the last write stays deleted; an index that matches its transcripts is not rewritten", () =>
      Effect.scoped(Effect.gen(function*() {
        const home = yield* tempHome
        yield* crashed(
          home,
          [["agent:main:a", "s-a", 1], ["agent:main:gone", "s-gone", 2]],
          [["s-gone", "deleted"]],
          [withEntry("agent:main:a", "s-a", 1), withEntry("agent:main:gone", "s-gone", 2)]
        )
        const rows = yield* reload(home)
        assert.deepStrictEqual([...rows.keys()], ["agent:main:a"])
        const repaired = yield* Effect.promise(() => fs.stat(indexFile(home)))
        const again = yield* reload(home)
        assert.deepStrictEqual([...again.keys()], ["agent:main:a"])
        assert.strictEqual((yield* Effect.promise(() => fs.stat(indexFile(home)))).mtimeMs, repaired.mtimeMs, "nothing to repair, nothing written")
      })))
  })
})
