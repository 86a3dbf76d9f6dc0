import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { AssistantMessage, Message } from "../../src/agent/Message.ts"
import * as FileSessionStore from "../../src/session/FileSessionStore.ts"
import { type SessionEntry, SessionStore } from "../../src/session/SessionStore.ts"
import * as Transcript from "../../src/session/Transcript.ts"

const tempHome = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "beamclaw-store-"))),
  (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
)

const withStore = <A, E>(f: (home: string) => Effect.Effect<A, E, SessionStore>) =>
  Effect.scoped(Effect.gen(function*() {
    const home = yield* tempHome
    return yield* f(home).pipe(Effect.provide(FileSessionStore.layer({ home })))
  }))

const header = (id: string): Transcript.Header => ({ type: "session", version: 3, id, timestamp: new Date().toISOString(), cwd: "/w", key: "agent:main:main", agentId: "main" })
const user = (text: string): Message => ({ role: "user", content: text, timestamp: 1 })
const toolCall = (id: string): AssistantMessage => ({
  role: "assistant",
  content: [{ type: "toolCall", id, name: "probe", arguments: { x: 1 } }],
  provider: "anthropic",
  model: "m",
  usage: { input: 1, output: 1, cacheRead: 0, cacheWrite: 0, totalTokens: 2 },
  stopReason: "toolUse",
  timestamp: 2
})
const transcriptFile = (home: string, id: string) => path.join(home, "agents", "main", "sessions", `${id}.jsonl`)
const read = (file: string) => Effect.promise(() => fs.readFile(file, "utf8"))

const entryFor = (sessionId: string): SessionEntry => ({
  sessionId, agentId: "main", updatedAt: 1, sessionStartedAt: 1, inputTokens: 0, outputTokens: 0, cacheRead: 0, cacheWrite: 0, totalTokens: 0, contextTokens: 0, compactionCount: 0, turnCount: 1
})

describe("FileSessionStore", () => {
  it.live("appends whole lines and reads them back", () =>
    withStore((home) => Effect.gen(function*() {
      const store = yield* SessionStore
      yield* store.createTranscript("main", header("s1"))
      yield* store.append("main", "s1", [Transcript.messageEntry(user("hello"), null)], { sync: true })
      const loaded = yield* store.loadTranscript("main", "s1", "agent:main:main")
      assert.strictEqual(loaded.entries.length, 1)
      assert.deepStrictEqual(loaded.repairs, [])
      const stat = yield* Effect.promise(() => fs.stat(transcriptFile(home, "s1")))
      assert.strictEqual(stat.mode & 0o777, 0o600)
    })))

  it.live("truncates a torn last line and writes the repair back", () =>
    withStore((home) => Effect.gen(function*() {
      const store = yield* SessionStore
      yield* store.createTranscript("main", header("s2"))
      yield* store.append("main", "s2", [Transcript.messageEntry(user("kept"), null)])
      yield* Effect.promise(() => fs.appendFile(transcriptFile(home, "s2"), `{"type":"message","id":"torn","parentId":null,"timest`))
      const loaded = yield* store.loadTranscript("main", "s2", "agent:main:main")
      assert.strictEqual(loaded.entries.length, 1)
      assert.include(loaded.repairs.join(), "torn")
      const text = yield* read(transcriptFile(home, "s2"))
      assert.isTrue(text.endsWith("\n"))
      assert.notInclude(text, "torn")
      const again = yield* store.loadTranscript("main", "s2", "agent:main:main")
      assert.deepStrictEqual(again.repairs, [], "the repair was written back, so a second load finds nothing to do")
    })))

  it.live("moves unreadable lines aside, keeping the original file", () =>
    withStore((home) => Effect.gen(function*() {
      const store = yield* SessionStore
      yield* store.createTranscript("main", header("s3"))
      yield* store.append("main", "s3", [Transcript.messageEntry(user("one"), null)])
      yield* Effect.promise(() => fs.appendFile(transcriptFile(home, "s3"), "garbage in the middle\n"))
      yield* store.append("main", "s3", [Transcript.messageEntry(user("two"), null)])
      const loaded = yield* store.loadTranscript("main", "s3", "agent:main:main")
      assert.strictEqual(loaded.entries.length, 2)
      assert.include(loaded.repairs.join(), "line 3: not JSON")
      const names = yield* Effect.promise(() => fs.readdir(path.dirname(transcriptFile(home, "s3"))))
      const backup = names.find((n) => n.startsWith("s3.jsonl.corrupt-"))
      assert.isDefined(backup)
      const original = yield* read(path.join(path.dirname(transcriptFile(home, "s3")), backup ?? ""))
      assert.include(original, "garbage in the middle", "the original bytes are kept")
    })))

  it.live("closes a tool call left without a result and persists the fix", () =>
    withStore((home) => Effect.gen(function*() {
      const store = yield* SessionStore
      yield* store.createTranscript("main", header("s4"))
      yield* store.append("main", "s4", [Transcript.messageEntry(user("q"), null), Transcript.messageEntry(toolCall("call_1"), null)])
      const loaded = yield* store.loadTranscript("main", "s4", "agent:main:main")
      assert.deepStrictEqual(Transcript.pendingToolCalls(loaded.entries), [])
      const text = yield* read(transcriptFile(home, "s4"))
      assert.include(text, `"toolCallId":"call_1"`)
    })))

  it.live("refuses session ids that would leave the sessions directory", () =>
    withStore(() => Effect.gen(function*() {
      const store = yield* SessionStore
      const error = yield* store.loadTranscript("main", "../../escape", "agent:main:main").pipe(Effect.flip)
      assert.strictEqual(error._tag, "StoreError")
      assert.include(error.message, "not a valid file name")
    })))

  it.live("flushes the index and rebuilds it from transcripts when it is corrupt", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* tempHome
      const indexFile = path.join(home, "agents", "main", "sessions", "sessions.json")
      yield* Effect.gen(function*() {
        const store = yield* SessionStore
        yield* store.createTranscript("main", header("s5"))
        yield* store.append("main", "s5", [Transcript.messageEntry(user("hi"), null)])
        yield* store.putEntry("agent:main:main", entryFor("s5"))
      }).pipe(Effect.provide(FileSessionStore.layer({ home })))
      const written = JSON.parse(yield* read(indexFile))
      assert.strictEqual(written["agent:main:main"].sessionId, "s5", "closing the layer flushed the index")

      yield* Effect.promise(() => fs.writeFile(indexFile, "{ not json"))
      const rows = yield* Effect.gen(function*() {
        const store = yield* SessionStore
        return yield* store.listEntries("main")
      }).pipe(Effect.provide(FileSessionStore.layer({ home })))
      assert.strictEqual(rows.length, 1)
      assert.strictEqual(rows[0]?.[0], "agent:main:main")
      assert.strictEqual(rows[0]?.[1].sessionId, "s5")
      const names = yield* Effect.promise(() => fs.readdir(path.dirname(indexFile)))
      assert.isTrue(names.some((n) => n.startsWith("sessions.json.corrupt-")), "the corrupt index is kept")
    })))
})

describe("FileSessionStore against hand-edited state", () => {
  it.live("keeps the good index entries when one is bad, and fills the gap from transcripts", () =>
    withStore((home) => Effect.gen(function*() {
      const store = yield* SessionStore
      yield* store.createTranscript("main", header("s6"))
      yield* store.append("main", "s6", [Transcript.messageEntry(user("hi"), null)])
      const indexFile = path.join(home, "agents", "main", "sessions", "sessions.json")
      yield* Effect.promise(() => fs.writeFile(indexFile, JSON.stringify({
        "agent:main:labelled": { ...entryFor("kept"), label: "keep me" },
        "agent:main:main": { sessionId: 42 }
      })))
      const rows = new Map(yield* store.listEntries("main"))
      assert.strictEqual(rows.get("agent:main:labelled")?.label, "keep me")
      assert.strictEqual(rows.get("agent:main:main")?.sessionId, "s6", "rebuilt from the transcript header")
    })))

  it.live("skips an unreadable transcript while rebuilding the index", () =>
    withStore((home) => Effect.gen(function*() {
      const store = yield* SessionStore
      yield* store.createTranscript("main", header("s7"))
      const dir = path.join(home, "agents", "main", "sessions")
      yield* Effect.promise(() => fs.mkdir(path.join(dir, "broken.jsonl")))
      const rows = yield* store.listEntries("main")
      assert.deepStrictEqual(rows.map(([key]) => key), ["agent:main:main"])
    })))

  it.live("refuses agent ids that would leave the state directory", () =>
    withStore(() => Effect.gen(function*() {
      const store = yield* SessionStore
      const error = yield* store.loadTranscript("../../escape", "s1", "agent:main:main").pipe(Effect.flip)
      assert.include(error.message, "agent id")
      const listed = yield* store.listEntries("../x").pipe(Effect.flip)
      assert.include(listed.message, "agent id")
    })))

  it.live("writes nothing in read-only mode", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* tempHome
      const dir = path.join(home, "agents", "main", "sessions")
      yield* Effect.promise(() => fs.mkdir(dir, { recursive: true }))
      yield* Effect.promise(() => fs.writeFile(path.join(dir, "sessions.json"), "{ broken"))
      yield* Effect.promise(() => fs.writeFile(path.join(dir, "s8.jsonl"), Transcript.encodeLine(header("s8")) + "garbage\n"))
      yield* Effect.gen(function*() {
        const store = yield* SessionStore
        assert.strictEqual((yield* store.listEntries("main")).length, 1)
        const loaded = yield* store.loadTranscript("main", "s8", "agent:main:main")
        assert.isAbove(loaded.repairs.length, 0)
      }).pipe(Effect.provide(FileSessionStore.layer({ home, readOnly: true })))
      const names = yield* Effect.promise(() => fs.readdir(dir))
      assert.deepStrictEqual(names.sort(), ["s8.jsonl", "sessions.json"])
      assert.strictEqual(yield* read(path.join(dir, "sessions.json")), "{ broken")
    })))
})
