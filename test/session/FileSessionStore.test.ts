import * as fs from "node:fs/promises"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { Effect, Fiber } from "effect"
import type { AssistantMessage, Message } from "../../src/agent/Message.ts"
import * as FileSessionStore from "../../src/session/FileSessionStore.ts"
import { type SessionEntry, SessionStore } from "../../src/session/SessionStore.ts"
import * as Transcript from "../../src/session/Transcript.ts"

const execFileAsync = promisify(execFile)

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
        "agent:main:main": { sessionId: 42 },
        "agent:main:spaced": { ...entryFor("kept"), sessionId: "my session" }
      })))
      const rows = new Map(yield* store.listEntries("main"))
      assert.strictEqual(rows.get("agent:main:labelled")?.label, "keep me")
      assert.strictEqual(rows.get("agent:main:main")?.sessionId, "s6", "rebuilt from the transcript header")
      assert.isFalse(rows.has("agent:main:spaced"), "an id that cannot name a transcript file is a bad entry, not a key stuck for good")
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

/** Descriptors this process holds on `file`, from /proc/self/fd (Linux). */
const openDescriptors = (file: string) =>
  Effect.promise(async () => {
    const fds = await fs.readdir("/proc/self/fd")
    let count = 0
    for (const fd of fds) {
      const target = await fs.readlink(`/proc/self/fd/${fd}`).catch(() => "")
      if (target === file || target === `${file} (deleted)`) count++
    }
    return count
  })

const waitFor = (check: Effect.Effect<boolean>, what: string, timeoutMs = 5000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("10 millis")
    }
  })

const withStoreOptions = <A, E>(options: Omit<FileSessionStore.FileSessionStoreOptions, "home">, f: (home: string) => Effect.Effect<A, E, SessionStore>) =>
  Effect.scoped(Effect.gen(function*() {
    const home = yield* tempHome
    return yield* f(home).pipe(Effect.provide(FileSessionStore.layer({ home, ...options })))
  }))

describe("FileSessionStore transcript handles", () => {
  it.live("keeps a transcript open between appends and closes it once idle", () =>
    withStoreOptions({ transcriptIdleMs: 200 }, (home) => Effect.gen(function*() {
      const store = yield* SessionStore
      const file = transcriptFile(home, "h1")
      yield* store.createTranscript("main", header("h1"))
      for (let i = 0; i < 5; i++) yield* store.append("main", "h1", [Transcript.messageEntry(user(`m${i}`), null)], { sync: i === 4 })
      assert.strictEqual(yield* openDescriptors(file), 1, "one descriptor serves every append")
      yield* waitFor(openDescriptors(file).pipe(Effect.map((n) => n === 0)), "the idle transcript to be closed")
      yield* store.append("main", "h1", [Transcript.messageEntry(user("after idle"), null)])
      const loaded = yield* store.loadTranscript("main", "h1", "agent:main:main")
      assert.deepStrictEqual(loaded.entries.map((e) => e.type === "message" ? e.message.content : ""), ["m0", "m1", "m2", "m3", "m4", "after idle"])
      assert.deepStrictEqual(loaded.repairs, [])
    })))

  it.live("holds at most maxOpenTranscripts, closing the least recently used", () =>
    withStoreOptions({ maxOpenTranscripts: 2 }, (home) => Effect.gen(function*() {
      const store = yield* SessionStore
      for (const id of ["l1", "l2", "l3"]) {
        yield* store.createTranscript("main", header(id))
        yield* store.append("main", id, [Transcript.messageEntry(user(`to ${id}`), null)])
      }
      assert.deepStrictEqual(
        [yield* openDescriptors(transcriptFile(home, "l1")), yield* openDescriptors(transcriptFile(home, "l2")), yield* openDescriptors(transcriptFile(home, "l3"))],
        [0, 1, 1]
      )
      yield* store.append("main", "l1", [Transcript.messageEntry(user("l1 again"), null)])
      assert.strictEqual(yield* openDescriptors(transcriptFile(home, "l2")), 0, "l2 was now the least recently used")
      const loaded = yield* store.loadTranscript("main", "l1", "agent:main:main")
      assert.strictEqual(loaded.entries.length, 2)
    })))

  it.live("closes every open transcript when the store's scope closes", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* tempHome
      yield* Effect.gen(function*() {
        const store = yield* SessionStore
        yield* store.createTranscript("main", header("c1"))
        yield* store.append("main", "c1", [Transcript.messageEntry(user("hi"), null)])
        assert.strictEqual(yield* openDescriptors(transcriptFile(home, "c1")), 1)
      }).pipe(Effect.provide(FileSessionStore.layer({ home })))
      assert.strictEqual(yield* openDescriptors(transcriptFile(home, "c1")), 0)
    })))

  it.live("archiving closes the transcript, and a new one starts after it", () =>
    withStore((home) => Effect.gen(function*() {
      const store = yield* SessionStore
      const file = transcriptFile(home, "a1")
      yield* store.createTranscript("main", header("a1"))
      yield* store.append("main", "a1", [Transcript.messageEntry(user("old"), null)])
      yield* store.archiveTranscript("main", "a1", "reset")
      const names = yield* Effect.promise(() => fs.readdir(path.dirname(file)))
      const archived = names.find((n) => n.startsWith("a1.jsonl.reset."))
      assert.isDefined(archived)
      assert.strictEqual(yield* openDescriptors(path.join(path.dirname(file), archived ?? "")), 0)
      yield* store.createTranscript("main", header("a1"))
      yield* store.append("main", "a1", [Transcript.messageEntry(user("new"), null)])
      assert.notInclude(yield* read(file), "old")
      assert.notInclude(yield* read(path.join(path.dirname(file), archived ?? "")), "new", "nothing was written to the archived file")
    })))

  it.live("a transcript replaced behind the store's back is reopened, not written blind", () =>
    withStore((home) => Effect.gen(function*() {
      const store = yield* SessionStore
      const file = transcriptFile(home, "r1")
      yield* store.createTranscript("main", header("r1"))
      yield* store.append("main", "r1", [Transcript.messageEntry(user("before"), null)])
      yield* Effect.promise(() => fs.rename(file, `${file}.moved`))
      yield* Effect.promise(() => fs.writeFile(file, Transcript.encodeLine(header("r1"))))
      yield* store.append("main", "r1", [Transcript.messageEntry(user("after"), null)])
      assert.include(yield* read(file), "after")
      assert.notInclude(yield* read(`${file}.moved`), "after")
      // A directory in its place makes the append fail, as opening it would.
      yield* Effect.promise(() => fs.rename(file, `${file}.moved2`))
      yield* Effect.promise(() => fs.mkdir(file))
      const error = yield* store.append("main", "r1", [Transcript.messageEntry(user("lost"), null)]).pipe(Effect.flip)
      assert.include(error.message, "EISDIR")
    })))

  it.live("a repair replaces the file, and later appends go to the repaired one", () =>
    withStore((home) => Effect.gen(function*() {
      const store = yield* SessionStore
      const file = transcriptFile(home, "p1")
      yield* store.createTranscript("main", header("p1"))
      yield* store.append("main", "p1", [Transcript.messageEntry(user("one"), null)])
      yield* Effect.promise(() => fs.appendFile(file, "{\"type\":\"message\",\"id\":\"torn"))
      const loaded = yield* store.loadTranscript("main", "p1", "agent:main:main")
      assert.include(loaded.repairs.join(), "torn")
      yield* store.append("main", "p1", [Transcript.messageEntry(user("two"), null)])
      const again = yield* store.loadTranscript("main", "p1", "agent:main:main")
      assert.deepStrictEqual(again.repairs, [])
      assert.strictEqual(again.entries.length, 2)
    })))

  it.live("a background append returns while its transcript is still being opened; later appends wait for it, in order", () =>
    withStore((home) => Effect.gen(function*() {
      const store = yield* SessionStore
      const file = transcriptFile(home, "q1")
      yield* Effect.promise(() => fs.mkdir(path.dirname(file), { recursive: true }))
      // Opening a FIFO for writing waits for a reader: an open that takes as long as the test wants.
      yield* Effect.promise(() => execFileAsync("mkfifo", [file]))
      yield* store.append("main", "q1", [Transcript.messageEntry(user("one"), "e0")], { background: true })
      const second = yield* Effect.forkChild(store.append("main", "q1", [Transcript.messageEntry(user("two"), "e0")]))
      yield* Effect.sleep("100 millis")
      assert.isUndefined(second.pollUnsafe(), "a plain append waits for the lines queued before it")
      const reader = yield* Effect.promise(() => fs.open(file, "r"))
      yield* Fiber.join(second)
      const text = yield* Effect.promise(async () => {
        const buffer = Buffer.alloc(65536)
        const { bytesRead } = await reader.read(buffer, 0, buffer.length)
        await reader.close()
        return buffer.subarray(0, bytesRead).toString("utf8")
      })
      assert.deepStrictEqual(text.trim().split("\n").map((line) => JSON.parse(line).message.content), ["one", "two"])
    })))

  it.live("a background write that cannot be made fails the next append with the reason, until the transcript is created again", () =>
    withStore((home) => Effect.gen(function*() {
      const store = yield* SessionStore
      const dir = path.dirname(transcriptFile(home, "f1"))
      yield* Effect.promise(() => fs.mkdir(path.dirname(dir), { recursive: true }))
      // A file where the sessions directory should be: neither the open nor its mkdir can succeed.
      yield* Effect.promise(() => fs.writeFile(dir, "not a directory"))
      yield* store.createTranscript("main", header("f1"), { background: true })
      yield* store.append("main", "f1", [Transcript.messageEntry(user("queued"), null)], { background: true })
      const error = yield* store.append("main", "f1", [Transcript.messageEntry(user("later"), null)], { sync: true }).pipe(Effect.flip)
      assert.include(error.message, "ENOTDIR")
      const again = yield* store.append("main", "f1", [Transcript.messageEntry(user("still later"), null)]).pipe(Effect.flip)
      assert.include(again.message, "ENOTDIR", "the loss is reported until the session starts over")
      yield* Effect.promise(() => fs.rm(dir))
      yield* store.createTranscript("main", header("f1"))
      yield* store.append("main", "f1", [Transcript.messageEntry(user("fresh start"), null)], { sync: true })
      const loaded = yield* store.loadTranscript("main", "f1", "agent:main:main")
      assert.deepStrictEqual(loaded.entries.map((e) => e.type === "message" ? e.message.content : ""), ["fresh start"])
    })))

  it.live("a kill -9 between appends leaves a transcript that loads whole", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* tempHome
      const src = path.resolve(import.meta.dirname, "../../src/session")
      const script = path.join(home, "writer.ts")
      yield* Effect.promise(() => fs.writeFile(script, [
        `import { Effect } from ${JSON.stringify(pathToFileURL(createRequire(import.meta.url).resolve("effect")).href)}`,
        `import * as FileSessionStore from ${JSON.stringify(path.join(src, "FileSessionStore.ts"))}`,
        `import { SessionStore } from ${JSON.stringify(path.join(src, "SessionStore.ts"))}`,
        `import * as Transcript from ${JSON.stringify(path.join(src, "Transcript.ts"))}`,
        `const home = process.argv[2]`,
        `await Effect.runPromise(Effect.gen(function*() {`,
        `  const store = yield* SessionStore`,
        `  yield* store.createTranscript("main", { type: "session", version: 3, id: "k9", timestamp: new Date().toISOString(), cwd: "/w", key: "agent:main:main", agentId: "main" })`,
        `  for (let i = 0; ; i++) {`,
        `    const text = "m" + i + " " + "x".repeat((i * 7919) % 65536)`,
        `    yield* store.append("main", "k9", [Transcript.messageEntry({ role: "user", content: text, timestamp: i }, null)], { sync: i % 16 === 0 })`,
        `    if (i % 16 === 0) process.stdout.write(i + "\\n")`,
        `  }`,
        `}).pipe(Effect.provide(FileSessionStore.layer({ home }))))`
      ].join("\n")))
      const { spawn } = yield* Effect.promise(() => import("node:child_process"))
      const child = spawn(process.execPath, [script, home], { cwd: path.resolve(import.meta.dirname, "../.."), stdio: ["ignore", "pipe", "pipe"] })
      let written = 0
      let stderr = ""
      child.stdout.on("data", (chunk: Buffer) => {
        const last = chunk.toString("utf8").trim().split("\n").at(-1)
        written = Math.max(written, Number(last))
      })
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString("utf8")
      })
      yield* waitFor(Effect.sync(() => written >= 200 || child.exitCode !== null), "the writer to append 200 entries", 15_000)
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve))
        child.kill("SIGKILL")
        yield* Effect.promise(() => exited)
      }
      assert.isAtLeast(written, 200, `the writer ran (stderr: ${stderr})`)
      const loaded = yield* Effect.gen(function*() {
        const store = yield* SessionStore
        return yield* store.loadTranscript("main", "k9", "agent:main:main")
      }).pipe(Effect.provide(FileSessionStore.layer({ home })))
      assert.isAtLeast(loaded.entries.length, written, "every append the writer reported is there")
      assert.isTrue(loaded.repairs.every((r) => r.includes("torn last line")), `only a torn tail may need repair: ${loaded.repairs.join("; ")}`)
      loaded.entries.forEach((entry, i) => {
        assert.isTrue(entry.type === "message" && typeof entry.message.content === "string" && entry.message.content.startsWith(`m${i} `), `entry ${i} is whole and in order`)
      })
    })))
})
