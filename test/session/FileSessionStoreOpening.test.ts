/**
 * A transcript whose open is slow (a hung or busy disk). node:fs/promises' open
 * is wrapped so a test can hold one open in flight for as long as it wants; the
 * store itself is the real one.
 */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { vi } from "vitest"
import { Effect, Fiber } from "effect"
import type { Message } from "../../src/agent/Message.ts"
import * as FileSessionStore from "../../src/session/FileSessionStore.ts"
import { SessionStore } from "../../src/session/SessionStore.ts"
import * as Transcript from "../../src/session/Transcript.ts"

const gate = vi.hoisted(() => ({ held: new Map<string, Promise<void>>() }))

vi.mock("node:fs/promises", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:fs/promises")>()
  const open = async (file: string, ...rest: Array<unknown>) => {
    const wait = gate.held.get(String(file))
    if (wait !== undefined) {
      gate.held.delete(String(file))
      await wait
    }
    return (actual.open as (...args: Array<unknown>) => Promise<unknown>)(file, ...rest)
  }
  return { ...actual, open, default: { ...actual, open } }
})

/** Holds the next open of `file` until the returned release is called, or the scope closes (a failed test does not hang). */
const holdNextOpen = (file: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      let release: () => void = () => {}
      gate.held.set(file, new Promise<void>((resolve) => (release = resolve)))
      return () => release()
    }),
    (release) => Effect.sync(release)
  )

const tempHome = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "beamclaw-opening-"))),
  (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
)
const header = (id: string): Transcript.Header => ({ type: "session", version: 3, id, timestamp: new Date().toISOString(), cwd: "/w", key: "agent:main:main", agentId: "main" })
const user = (text: string): Message => ({ role: "user", content: text, timestamp: 1 })
const transcriptFile = (home: string, id: string) => path.join(home, "agents", "main", "sessions", `${id}.jsonl`)
const messages = (file: string) =>
  Effect.promise(() => fs.readFile(file, "utf8")).pipe(Effect.map((text) => Transcript.parse(text).entries.map((e) => e.type === "message" ? e.message.content : e.type)))

describe("FileSessionStore with a slow open", () => {
  it.live("an open slower than the idle timeout keeps its place: later appends and loads wait for its queued lines", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* tempHome
      const file = transcriptFile(home, "i1")
      yield* Effect.promise(() => fs.mkdir(path.dirname(file), { recursive: true }))
      yield* Effect.promise(() => fs.writeFile(file, Transcript.encodeLine(header("i1"))))
      yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* SessionStore
        const release = yield* holdNextOpen(file)
        yield* store.append("main", "i1", [Transcript.messageEntry(user("one"), null)], { background: true })
        // Three idle periods pass while the open is held.
        yield* Effect.sleep("150 millis")
        const last = yield* Effect.forkChild(store.append("main", "i1", [Transcript.messageEntry(user("two"), null)], { sync: true }))
        const load = yield* Effect.forkChild(store.loadTranscript("main", "i1", "agent:main:main"))
        yield* Effect.sleep("50 millis")
        assert.isUndefined(last.pollUnsafe(), "the durable append waits for the line queued before it")
        assert.isUndefined(load.pollUnsafe(), "a load waits for the open in flight")
        release()
        yield* Fiber.join(last)
        const loaded = yield* Fiber.join(load)
        assert.deepStrictEqual(yield* messages(file), ["one", "two"])
        assert.deepStrictEqual(loaded.entries.map((e) => e.type === "message" ? e.message.content : e.type), ["one", "two"])
      })).pipe(Effect.provide(FileSessionStore.layer({ home, transcriptIdleMs: 50 })))
    })))

  it.live("a transcript created again while its first open is still in flight is written after it, never interleaved", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* tempHome
      const file = transcriptFile(home, "c1")
      yield* Effect.promise(() => fs.mkdir(path.dirname(file), { recursive: true }))
      yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* SessionStore
        const release = yield* holdNextOpen(file)
        yield* store.createTranscript("main", header("c1"), { background: true })
        yield* store.append("main", "c1", [Transcript.messageEntry(user("first open"), null)], { background: true })
        // A second creation of the same path (the store is told the file is new again) while the first is held.
        yield* store.createTranscript("main", header("c1"), { background: true })
        const second = yield* Effect.forkChild(store.append("main", "c1", [Transcript.messageEntry(user("second open"), null)], { sync: true }))
        yield* Effect.sleep("50 millis")
        assert.isUndefined(second.pollUnsafe(), "the second open waits for the first")
        release()
        yield* Fiber.join(second)
        assert.deepStrictEqual(yield* messages(file), ["first open", "second open"])
      })).pipe(Effect.provide(FileSessionStore.layer({ home })))
    })))
})
