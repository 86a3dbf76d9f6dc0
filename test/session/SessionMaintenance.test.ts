import * as fs from "node:fs/promises"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Stream } from "effect"
import { AppConfig } from "../../src/config/AppConfig.ts"
import { classifyStoredFile } from "../../src/session/FileSessionStore.ts"
import * as SessionKey from "../../src/session/SessionKey.ts"
import {
  ageGranularityMs,
  type MaintenancePolicy,
  nextAgeBoundary,
  planRemovals,
  resolvePolicy,
  retentionOf,
  SessionMaintenance,
  type SessionMaintenanceOptions,
  type SessionRowView
} from "../../src/session/SessionMaintenance.ts"
import { Sessions } from "../../src/session/Sessions.ts"
import { emptySessionEntry, type SessionEntry } from "../../src/session/SessionStore.ts"
import * as Transcript from "../../src/session/Transcript.ts"
import { FakeAnthropic } from "../support/FakeAnthropic.ts"
import * as TestApp from "../support/TestApp.ts"
import { waitUntil } from "../support/WaitUntil.ts"

const DAY = 86_400_000
const NOW = Date.UTC(2026, 10, 26, 12)

const policy = (overrides: Partial<MaintenancePolicy> = {}): MaintenancePolicy => ({
  ...resolvePolicy({ mode: "enforce", pruneAfter: "30d", maxEntries: 5000, maxDiskBytes: "10gb" }),
  ...overrides
})

const row = (key: string, ageDays: number, live = false): SessionRowView => ({
  key,
  entry: { ...emptySessionEntry(`s-${key.replaceAll(":", "-")}`, "main", NOW - ageDays * DAY), updatedAt: NOW - ageDays * DAY },
  live
})

const parsed = (key: string) => {
  const result = SessionKey.parse(key)
  if (result._tag === "Failure") throw new Error(result.failure.message)
  return result.success
}

describe("SessionMaintenance rules", () => {
  it("resolves OpenClaw's defaults and spellings: 30 days, 5,000 entries, 10 GiB with 80% as the target; false or 0 turns a rule off", () => {
    const defaults = resolvePolicy({ mode: "enforce", pruneAfter: "30d", maxEntries: 5000, maxDiskBytes: "10gb" })
    assert.deepStrictEqual(defaults, {
      mode: "enforce",
      pruneAfterMs: 30 * DAY,
      maxEntries: 5000,
      preserveRecentMs: undefined,
      archiveRetentionMs: undefined,
      maxDiskBytes: 10 * 1024 ** 3,
      highWaterBytes: Math.floor(10 * 1024 ** 3 * 0.8)
    })
    const off = resolvePolicy({ mode: "warn", pruneAfter: false, maxEntries: 10, maxDiskBytes: 0, resetArchiveRetention: "false" })
    assert.isUndefined(off.pruneAfterMs)
    assert.isUndefined(off.maxDiskBytes)
    assert.isUndefined(off.archiveRetentionMs)
    assert.strictEqual(resolvePolicy({ mode: "enforce", pruneAfter: "12h", maxEntries: 1, maxDiskBytes: "500mb", highWaterBytes: "400mb" }).highWaterBytes, 400 * 1024 ** 2)
    assert.strictEqual(resolvePolicy({ mode: "enforce", pruneAfter: "12h", maxEntries: 1, maxDiskBytes: 1000, highWaterBytes: 5000 }).highWaterBytes, 800, "a target above the budget falls back to 80%")
  })

  it("keeps conversations a channel points at; erases one-request and automation sessions; archives the rest", () => {
    const retention = (key: string, turnCount = 1) => retentionOf(parsed(key), { turnCount })
    assert.strictEqual(retention("agent:main:main"), "kept")
    assert.strictEqual(retention("agent:main:discord:direct:123"), "kept")
    assert.strictEqual(retention("agent:main:discord:group:456"), "kept")
    assert.strictEqual(retention("agent:main:discord:channel:789:thread:1"), "kept")
    assert.strictEqual(retention("agent:main:openai:0b7c1f52-9c1e-4c8e-9b1e-2f1f8d7c1a11"), "disposable")
    assert.strictEqual(retention("agent:main:openresponses:0b7c1f52"), "disposable")
    assert.strictEqual(retention("agent:main:openresponses:0b7c1f52", 3), "durable", "a Responses chain continued with previous_response_id is a conversation")
    assert.strictEqual(retention("agent:main:openai:chosen-by-a-header", 2), "durable")
    assert.strictEqual(retention("agent:main:cron:nightly"), "disposable")
    assert.strictEqual(retention("agent:main:hook:gmail"), "disposable")
    assert.strictEqual(retention("agent:main:openai-user:alice"), "durable")
    assert.strictEqual(retention("agent:main:scratch"), "durable")
  })

  it("plans the age rule, then the count rule over what is left, oldest first; live sessions, the active key and kept ones stay and count", () => {
    const rows = [
      row("agent:main:main", 400),
      row("agent:main:openai-user:old", 40),
      row("agent:main:openai:one", 35),
      row("agent:main:openai-user:live", 50, true),
      row("agent:main:openai-user:active", 45),
      row("agent:main:openai-user:a", 20),
      row("agent:main:openai-user:b", 10),
      row("agent:main:openai:c", 5),
      row("agent:main:openai-user:d", 1)
    ]
    const removals = planRemovals(rows, policy({ maxEntries: 2 }), { now: NOW, mainKey: "main", activeKey: "agent:main:openai-user:active" })
    assert.deepStrictEqual(removals.map((r) => [r.key, r.reason, r.transcript]), [
      ["agent:main:openai-user:old", "age", "archive"],
      ["agent:main:openai:one", "age", "erase"],
      ["agent:main:openai:c", "cap", "erase"],
      ["agent:main:openai-user:a", "cap", "archive"],
      ["agent:main:openai-user:b", "cap", "archive"],
      ["agent:main:openai-user:d", "cap", "archive"]
    ])
    assert.strictEqual(rows.length - removals.length, 3, "the main, live and active sessions keep the index above its cap of 2")
    assert.strictEqual(planRemovals(rows, policy({ maxEntries: 5 }), { now: NOW, mainKey: "main" }).length, 4, "two by age, then two by count: down to the cap exactly")
    const preserved = planRemovals(rows, policy({ maxEntries: 4, preserveRecentMs: 15 * DAY }), { now: NOW, mainKey: "main" })
    assert.deepStrictEqual(preserved.filter((r) => r.reason === "cap").map((r) => r.key), ["agent:main:openai:c", "agent:main:openai-user:a"], "preserveRecent keeps recent durable sessions, not one-request ones")
    assert.deepStrictEqual(planRemovals(rows, policy({ pruneAfterMs: undefined }), { now: NOW, mainKey: "main" }), [], "no age rule and under the cap: nothing")
  })

  it("over the cap, one-request sessions go before a person's conversation, however much newer they are", () => {
    const person = row("agent:main:openai-user:alice", 0.001)
    const flood = Array.from({ length: 300 }, (_, i) => row(`agent:main:openai:req-${i}`, 0.0001 - i * 0.0000001))
    const removals = planRemovals([person, ...flood], policy({ maxEntries: 100 }), { now: NOW, mainKey: "main" })
    assert.strictEqual(removals.length, 201)
    assert.isFalse(removals.some((r) => r.key === person.key))
    assert.isTrue(removals.every((r) => r.transcript === "erase"))
  })

  it("computes the next age boundary from the oldest session that may go; none when only kept sessions are left", () => {
    const rows = [row("agent:main:main", 100), row("agent:main:openai-user:x", 10), row("agent:main:openai-user:y", 3)]
    assert.strictEqual(nextAgeBoundary(rows, policy(), { now: NOW, mainKey: "main", liveRecheckMs: 360_000 }), NOW - 10 * DAY + 30 * DAY + 1)
    assert.isUndefined(nextAgeBoundary([row("agent:main:main", 100)], policy(), { now: NOW, mainKey: "main", liveRecheckMs: 360_000 }))
    assert.strictEqual(nextAgeBoundary([row("agent:main:openai-user:z", 40, true)], policy(), { now: NOW, mainKey: "main", liveRecheckMs: 360_000 }), NOW + 360_000, "a live session past its time is looked at after it may have gone idle")
    assert.strictEqual(nextAgeBoundary([row("agent:main:openai-user:p", 1)], policy({ preserveRecentMs: 40 * DAY }), { now: NOW, mainKey: "main", liveRecheckMs: 1 }), NOW - DAY + 40 * DAY + 1, "preserveRecent longer than pruneAfter delays a durable session")
    assert.strictEqual(ageGranularityMs(policy()), 3_600_000, "30 days: at most one age pass an hour")
    assert.strictEqual(ageGranularityMs(policy({ pruneAfterMs: 3000 })), 1000)
  })

  it("names stored files as the store names them, with the time from an archive's or backup's name", () => {
    assert.deepStrictEqual(classifyStoredFile("abc.jsonl.deleted.2026-10-01T08-30-00.250Z", 10, 1), { name: "abc.jsonl.deleted.2026-10-01T08-30-00.250Z", bytes: 10, kind: "archive", at: Date.UTC(2026, 9, 1, 8, 30, 0, 250) })
    assert.strictEqual(classifyStoredFile("abc.jsonl.reset.2026-10-01T08-30-00.000Z", 1, 1).kind, "archive")
    assert.deepStrictEqual(classifyStoredFile("abc.jsonl.corrupt-1700000000000", 1, 5), { name: "abc.jsonl.corrupt-1700000000000", bytes: 1, kind: "backup", at: 1700000000000 })
    assert.strictEqual(classifyStoredFile("sessions.json", 1, 1).kind, "index")
    assert.strictEqual(classifyStoredFile("abc.jsonl", 1, 1).kind, "transcript")
    assert.strictEqual(classifyStoredFile("sessions.json.123.4.tmp", 1, 1).kind, "temporary")
    assert.strictEqual(classifyStoredFile("s1.jsonl.4242.9f3a01bc.tmp", 1, 1).kind, "temporary")
    assert.strictEqual(classifyStoredFile("notes.tmp", 1, 1).kind, "other")
    assert.strictEqual(classifyStoredFile("../x.jsonl.deleted.2026-10-01T08-30-00.000Zjunk", 1, 1).kind, "other")
  })
})

// ---------------------------------------------------------------------------
// Against the real store and session host

interface Seed {
  readonly key: string
  readonly ageDays: number
  /** Bytes of padding in the transcript; no transcript at all when undefined. */
  readonly transcriptBytes?: number | undefined
}

const sessionsDir = (home: string) => path.join(home, "agents", "main", "sessions")

const sessionIdOf = (key: string) => `seed-${key.split(":").slice(2).join("-")}`

/** An index and transcripts on disk, as a gateway that ran for a while leaves them. */
const seed = (home: string, seeds: ReadonlyArray<Seed>, now = Date.now()) =>
  Effect.promise(async () => {
    const dir = sessionsDir(home)
    await fs.mkdir(dir, { recursive: true })
    const index: Record<string, SessionEntry> = {}
    for (const s of seeds) {
      const at = now - s.ageDays * DAY
      const sessionId = sessionIdOf(s.key)
      index[s.key] = { ...emptySessionEntry(sessionId, "main", at), updatedAt: at }
      if (s.transcriptBytes === undefined) continue
      const header: Transcript.Header = { type: "session", version: Transcript.TRANSCRIPT_VERSION, id: sessionId, timestamp: new Date(at).toISOString(), cwd: "", key: s.key, agentId: "main" }
      const message = Transcript.messageEntry({ role: "user", content: "x".repeat(s.transcriptBytes), timestamp: at }, null, new Date(at))
      await fs.writeFile(path.join(dir, `${sessionId}.jsonl`), Transcript.encodeLine(header) + Transcript.encodeLine(message))
    }
    await fs.writeFile(path.join(dir, "sessions.json"), JSON.stringify(index))
  })

const archiveName = (sessionId: string, reason: "reset" | "deleted", at: number) =>
  `${sessionId}.jsonl.${reason}.${new Date(at).toISOString().replaceAll(":", "-")}`

const listDir = (home: string) => Effect.promise(() => fs.readdir(sessionsDir(home)).then((names) => names.sort()))
const indexOnDisk = (home: string) =>
  Effect.promise(async () => Object.keys(JSON.parse(await fs.readFile(path.join(sessionsDir(home), "sessions.json"), "utf8")) as Record<string, unknown>).sort())

const withMaintenance = <A, E>(
  home: string,
  fakeUrl: string,
  config: Record<string, unknown>,
  options: SessionMaintenanceOptions,
  body: Effect.Effect<A, E, SessionMaintenance | Sessions | AppConfig>
) => body.pipe(Effect.provide(SessionMaintenance.layer(options).pipe(Layer.provideMerge(TestApp.layer({ home, anthropicUrl: fakeUrl, config })))))

const lastPass = Effect.gen(function*() {
  return yield* (yield* SessionMaintenance).last
})

/** Waits for the first pass to have run (the live clock). */
const firstPassDone = Effect.gen(function*() {
  const maintenance = yield* SessionMaintenance
  yield* waitUntil(maintenance.last.pipe(Effect.map((pass) => pass !== undefined)), "the first pass")
})

describe("SessionMaintenance", () => {
  it.live("the first pass after start removes sessions idle past pruneAfter: archived, or erased when made for one request or by automation; conversations stay", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      yield* seed(home, [
        { key: "agent:main:main", ageDays: 90, transcriptBytes: 10 },
        { key: "agent:main:discord:direct:123", ageDays: 60, transcriptBytes: 10 },
        { key: "agent:main:openai-user:alice", ageDays: 45, transcriptBytes: 10 },
        { key: "agent:main:openai:0b7c1f52", ageDays: 40, transcriptBytes: 10 },
        { key: "agent:main:cron:nightly", ageDays: 31, transcriptBytes: 10 },
        { key: "agent:main:openai-user:bob", ageDays: 1, transcriptBytes: 10 }
      ])
      yield* withMaintenance(home, fake.url, {}, { firstPassAfter: "20 millis" }, Effect.gen(function*() {
        yield* firstPassDone
        const pass = yield* lastPass
        assert.strictEqual(pass?.trigger, "start")
        const summary = pass?.summaries[0]
        assert.strictEqual(summary?.pruned, 3)
        assert.strictEqual(summary?.beforeCount, 6)
        assert.strictEqual(summary?.afterCount, 3)
        assert.isFalse(summary?.dryRun)
        assert.deepStrictEqual(summary?.actions, [
          { key: "agent:main:openai-user:alice", reason: "age", transcript: "archive" },
          { key: "agent:main:openai:0b7c1f52", reason: "age", transcript: "erase" },
          { key: "agent:main:cron:nightly", reason: "age", transcript: "erase" }
        ])
        const names = yield* listDir(home)
        assert.isTrue(names.some((name) => name.startsWith(`${sessionIdOf("agent:main:openai-user:alice")}.jsonl.deleted.`)), names.join(", "))
        for (const gone of ["agent:main:openai-user:alice", "agent:main:openai:0b7c1f52", "agent:main:cron:nightly"]) {
          assert.notInclude(names, `${sessionIdOf(gone)}.jsonl`)
        }
        assert.isFalse(names.some((name) => name.startsWith(sessionIdOf("agent:main:openai:0b7c1f52"))), "a one-request session's transcript is erased, not archived")
        for (const kept of ["agent:main:main", "agent:main:discord:direct:123", "agent:main:openai-user:bob"]) assert.include(names, `${sessionIdOf(kept)}.jsonl`)
        // The pass writes the index at once.
        assert.deepStrictEqual(yield* indexOnDisk(home), ["agent:main:discord:direct:123", "agent:main:main", "agent:main:openai-user:bob"])
        assert.deepStrictEqual((yield* (yield* Sessions).list()).map((r) => r.key).sort(), ["agent:main:discord:direct:123", "agent:main:main", "agent:main:openai-user:bob"])
      }))
    })))

  it.live("past maxEntries, the oldest sessions go as soon as the index is written, without waiting for the first pass", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      yield* withMaintenance(home, fake.url, { session: { maintenance: { maxEntries: 3 } } }, { firstPassAfter: "1 hour" }, Effect.gen(function*() {
        const sessions = yield* Sessions
        const keys: Array<string> = []
        for (let i = 0; i < 5; i++) {
          const key = `agent:main:openai:req-${i}`
          keys.push(key)
          yield* Stream.runDrain(sessions.send(key, { runId: crypto.randomUUID(), text: `hello ${i}`, oneShot: true }))
          yield* Effect.sleep("5 millis")
        }
        const maintenance = yield* SessionMaintenance
        // The pass is over when it is the last one recorded (the list shrinks while it still runs).
        yield* waitUntil(
          Effect.all([sessions.list(), maintenance.last]).pipe(Effect.map(([rows, pass]) => rows.length === 3 && pass !== undefined), Effect.orDie),
          "the cap to be applied"
        )
        assert.deepStrictEqual((yield* sessions.list()).map((r) => r.key).sort(), keys.slice(2).sort(), "the newest three are kept")
        const pass = yield* lastPass
        assert.strictEqual(pass?.trigger, "cap")
        // One pass, or one per index write when the writes fall between the requests.
        assert.isAtLeast(pass?.summaries[0]?.capped ?? 0, 1)
        assert.isNull(pass?.summaries[0]?.diskBudget ?? null, "a pass for the cap alone does not measure the disk")
        const names = yield* listDir(home)
        assert.strictEqual(names.filter((name) => name.endsWith(".jsonl")).length, 3, names.join(", "))
        assert.isFalse(names.some((name) => name.includes(".deleted.")), "one-request sessions are erased")
      }))
    })))

  it.live("a live session and the active key are never removed; mail for a session being retired waits, then finds a fresh one", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      const old = Array.from({ length: 12 }, (_, i) => `agent:main:openai-user:old-${i}`)
      yield* seed(home, [...old.map((key) => ({ key, ageDays: 40, transcriptBytes: 10 })), { key: "agent:main:openai-user:carol", ageDays: 40, transcriptBytes: 10 }])
      yield* withMaintenance(home, fake.url, {}, { firstPassAfter: "1 hour" }, Effect.gen(function*() {
        const sessions = yield* Sessions
        const maintenance = yield* SessionMaintenance
        yield* sessions.history("agent:main:openai-user:carol")
        const [summary] = yield* maintenance.run({ activeKey: "agent:main:openai-user:old-0", dryRun: true })
        assert.isTrue(summary?.dryRun)
        assert.strictEqual(summary?.pruned, 11)
        assert.notInclude(summary?.actions.map((a) => a.key) ?? [], "agent:main:openai-user:carol", "live")
        assert.notInclude(summary?.actions.map((a) => a.key) ?? [], "agent:main:openai-user:old-0", "the active key")
        assert.strictEqual((yield* sessions.list()).length, 13, "a dry run removes nothing")

        // Each old session is retired while a message to it is sent: either the message wins (the session is
        // live and kept, with its history) or the retirement does (the message finds a fresh session).
        const rows = new Map((yield* sessions.list()).map((r) => [r.key, r.entry]))
        const outcomes = { retired: 0, kept: 0 }
        for (const [i, key] of old.slice(1).entries()) {
          const entry = rows.get(key)
          if (entry === undefined) throw new Error(`no entry for ${key}`)
          const retire = yield* Effect.forkChild(sessions.retireIdle(key, entry, "archive"))
          // Every other time the retirement is let start first.
          if (i % 2 === 0) yield* Effect.yieldNow
          yield* Stream.runDrain(sessions.send(key, { runId: crypto.randomUUID(), text: "still there?" }))
          const retired = yield* Fiber.join(retire)
          const history = (yield* sessions.history(key)).filter((e) => e.type === "message")
          const now = yield* sessions.entry(key)
          outcomes[retired ? "retired" : "kept"]++
          if (retired) {
            assert.notStrictEqual(now?.sessionId, entry.sessionId, `${key}: a fresh session`)
            assert.strictEqual(history.length, 2, `${key}: only the new turn`)
          } else {
            assert.strictEqual(now?.sessionId, entry.sessionId, `${key}: the same session`)
            assert.strictEqual(history.length, 3, `${key}: the old message and the new turn`)
          }
        }
        assert.isAbove(outcomes.retired, 0, "some retirements went first")
        assert.isAbove(outcomes.kept, 0, "some messages went first")
      }))
    })))

  it.live("the disk budget takes archives and backups first, oldest first, then the oldest sessions, down to the target; kept ones stay", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      const now = Date.now()
      yield* seed(home, [
        { key: "agent:main:main", ageDays: 20, transcriptBytes: 3000 },
        { key: "agent:main:openai:aaa", ageDays: 10, transcriptBytes: 3000 },
        { key: "agent:main:openai-user:b", ageDays: 5, transcriptBytes: 3000 },
        { key: "agent:main:openai-user:c", ageDays: 2, transcriptBytes: 3000 }
      ], now)
      const dir = sessionsDir(home)
      const archives = [archiveName("arch-1", "reset", now - 9 * DAY), archiveName("arch-2", "deleted", now - 3 * DAY)]
      for (const name of archives) yield* Effect.promise(() => fs.writeFile(path.join(dir, name), "y".repeat(3000)))
      yield* Effect.promise(() => fs.writeFile(path.join(dir, "sessions.json.corrupt-1700000000000"), "z".repeat(3000)))
      // Archives, the backup, and then the one-request session must go to get under 11 KB; a person's never do.
      yield* withMaintenance(home, fake.url, { session: { maintenance: { maxDiskBytes: 14_000, highWaterBytes: 11_000 } } }, { firstPassAfter: "1 hour" }, Effect.gen(function*() {
        const [summary] = yield* (yield* SessionMaintenance).run({})
        const budget = summary?.diskBudget
        assert.isNotNull(budget ?? null)
        assert.isAbove(budget?.totalBytesBefore ?? 0, 18_000)
        assert.strictEqual(budget?.removedFiles, 3)
        assert.strictEqual(budget?.removedEntries, 1)
        assert.isAtMost(budget?.totalBytesAfter ?? Infinity, 11_000)
        assert.isFalse(budget?.overBudget)
        assert.deepStrictEqual(summary?.actions, [{ key: "agent:main:openai:aaa", reason: "disk", transcript: "erase" }])
        const names = yield* listDir(home)
        for (const name of archives) assert.notInclude(names, name)
        assert.notInclude(names, "sessions.json.corrupt-1700000000000")
        assert.notInclude(names, `${sessionIdOf("agent:main:openai:aaa")}.jsonl`)
        for (const kept of ["agent:main:main", "agent:main:openai-user:b", "agent:main:openai-user:c"]) assert.include(names, `${sessionIdOf(kept)}.jsonl`)
        const measured = yield* Effect.promise(async () => {
          let total = 0
          for (const name of await fs.readdir(dir)) total += (await fs.stat(path.join(dir, name))).size
          return total
        })
        assert.isAtMost(measured, 11_000, "what the report says is what the directory holds")
      }))
    })))

  it.live("a budget that only conversations exceed is reported over budget, and no conversation is erased for space", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      yield* seed(home, [
        { key: "agent:main:main", ageDays: 1, transcriptBytes: 5000 },
        { key: "agent:main:discord:direct:9", ageDays: 100, transcriptBytes: 5000 },
        { key: "agent:main:openai-user:kim", ageDays: 10, transcriptBytes: 5000 }
      ])
      yield* withMaintenance(home, fake.url, { session: { maintenance: { maxDiskBytes: 2000 } } }, { firstPassAfter: "1 hour" }, Effect.gen(function*() {
        const [summary] = yield* (yield* SessionMaintenance).run({})
        assert.isTrue(summary?.diskBudget?.overBudget)
        assert.strictEqual(summary?.diskBudget?.removedEntries, 0)
        assert.strictEqual(summary?.afterCount, 3)
      }))
    })))

  it.live("a full pass erases temporary files a killed write left behind more than an hour ago, and no others", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      yield* seed(home, [{ key: "agent:main:main", ageDays: 0, transcriptBytes: 10 }])
      const dir = sessionsDir(home)
      const old = "sessions.json.4242.7.tmp"
      const recent = "sessions.json.4242.8.tmp"
      yield* Effect.promise(async () => {
        for (const name of [old, recent]) await fs.writeFile(path.join(dir, name), "{}")
        const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000)
        await fs.utimes(path.join(dir, old), twoHoursAgo, twoHoursAgo)
      })
      yield* withMaintenance(home, fake.url, {}, { firstPassAfter: "1 hour" }, Effect.gen(function*() {
        yield* (yield* SessionMaintenance).run({})
        const names = yield* listDir(home)
        assert.notInclude(names, old)
        assert.include(names, recent, "a write may still be in flight")
      }))
    })))

  it.live("resetArchiveRetention erases archives older than it, and only those", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      const now = Date.now()
      yield* seed(home, [{ key: "agent:main:main", ageDays: 0, transcriptBytes: 10 }], now)
      const oldOne = archiveName("gone", "reset", now - 40 * DAY)
      const recent = archiveName("kept", "deleted", now - 2 * DAY)
      for (const name of [oldOne, recent]) yield* Effect.promise(() => fs.writeFile(path.join(sessionsDir(home), name), "{}\n"))
      yield* withMaintenance(home, fake.url, { session: { maintenance: { resetArchiveRetention: "30d" } } }, { firstPassAfter: "20 millis" }, Effect.gen(function*() {
        yield* firstPassDone
        assert.strictEqual((yield* lastPass)?.summaries[0]?.archivesRemoved, 1)
        const names = yield* listDir(home)
        assert.notInclude(names, oldOne)
        assert.include(names, recent)
      }))
    })))

  it.live("warn mode reports what it would remove and keeps everything; enforce applies it; fixMissing drops entries without a transcript", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      yield* seed(home, [
        { key: "agent:main:main", ageDays: 0 },
        { key: "agent:main:openai-user:stale", ageDays: 60, transcriptBytes: 10 },
        { key: "agent:main:openai-user:hollow", ageDays: 1 }
      ])
      yield* withMaintenance(home, fake.url, { session: { maintenance: { mode: "warn" } } }, { firstPassAfter: "20 millis" }, Effect.gen(function*() {
        yield* firstPassDone
        const first = (yield* lastPass)?.summaries[0]
        assert.isTrue(first?.dryRun)
        assert.isTrue(first?.wouldMutate)
        assert.strictEqual(first?.pruned, 1)
        assert.include(yield* listDir(home), `${sessionIdOf("agent:main:openai-user:stale")}.jsonl`)
        assert.strictEqual((yield* (yield* Sessions).list()).length, 3)
        const reported = yield* lastPass
        yield* Effect.sleep("300 millis")
        assert.strictEqual(yield* lastPass, reported, "what warn mode reported is not looked at again at once")

        const [applied] = yield* (yield* SessionMaintenance).run({ enforce: true, fixMissing: true })
        assert.isFalse(applied?.dryRun)
        assert.strictEqual(applied?.pruned, 1)
        assert.strictEqual(applied?.missing, 1, "hollow has no transcript; the main session is never dropped")
        assert.deepStrictEqual((yield* (yield* Sessions).list()).map((r) => r.key), ["agent:main:main"])
      }))
    })))

  it.live("a session that cannot be removed is skipped and named; the rest of the pass goes on", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      // A one-request session whose transcript cannot be erased: a directory stands where the file would be.
      yield* seed(home, [
        { key: "agent:main:openai:one", ageDays: 40, transcriptBytes: 10 },
        { key: "agent:main:openai:two", ageDays: 41, transcriptBytes: 10 },
        { key: "agent:main:openai-user:three", ageDays: 42, transcriptBytes: 10 },
        { key: "agent:main:openai:broken", ageDays: 50 }
      ])
      yield* Effect.promise(() => fs.mkdir(path.join(sessionsDir(home), `${sessionIdOf("agent:main:openai:broken")}.jsonl`, "inside"), { recursive: true }))
      yield* withMaintenance(home, fake.url, {}, { firstPassAfter: "1 hour" }, Effect.gen(function*() {
        const [summary] = yield* (yield* SessionMaintenance).run({})
        assert.strictEqual(summary?.pruned, 3)
        assert.deepStrictEqual((yield* (yield* Sessions).list()).map((r) => r.key), ["agent:main:openai:broken"])
      }))
    })))

  it.live("warn mode runs no pass per index write, however far past the cap", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      yield* withMaintenance(home, fake.url, { session: { maintenance: { mode: "warn", maxEntries: 2 } } }, { firstPassAfter: "1 hour" }, Effect.gen(function*() {
        const sessions = yield* Sessions
        for (let i = 0; i < 6; i++) {
          yield* Stream.runDrain(sessions.send(`agent:main:openai:w-${i}`, { runId: crypto.randomUUID(), text: "hi", oneShot: true }))
          yield* Effect.sleep("150 millis")
        }
        assert.strictEqual((yield* sessions.list()).length, 6)
        assert.isUndefined(yield* lastPass, "warn mode reports at its full passes only")
      }))
    })))

  it.live("an age boundary runs a pass over the index only, not the directory", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      const now = Date.now()
      yield* seed(home, [{ key: "agent:main:main", ageDays: 0, transcriptBytes: 10 }, { key: "agent:main:openai-user:soon", ageDays: 0, transcriptBytes: 10 }], now - 1500)
      yield* withMaintenance(home, fake.url, { session: { maintenance: { pruneAfter: "2s" } } }, { firstPassAfter: "10 millis" }, Effect.gen(function*() {
        yield* firstPassDone
        assert.strictEqual((yield* lastPass)?.trigger, "start")
        assert.isNotNull((yield* lastPass)?.summaries[0]?.diskBudget ?? null, "the first pass is a full one")
        const maintenance = yield* SessionMaintenance
        yield* waitUntil(maintenance.last.pipe(Effect.map((pass) => pass?.trigger === "boundary")), "the boundary pass")
        const pass = yield* lastPass
        assert.strictEqual(pass?.summaries[0]?.pruned, 1)
        assert.isNull(pass?.summaries[0]?.diskBudget ?? null)
      }))
    })))

  it.live("a requested dry run leaves the schedule alone: the session it reported is still pruned at its time", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      yield* seed(home, [{ key: "agent:main:main", ageDays: 0, transcriptBytes: 10 }, { key: "agent:main:openai-user:x", ageDays: 0, transcriptBytes: 10 }], Date.now() - 1500)
      yield* withMaintenance(home, fake.url, { session: { maintenance: { pruneAfter: "2s" } } }, { firstPassAfter: "10 millis" }, Effect.gen(function*() {
        yield* firstPassDone
        const sessions = yield* Sessions
        yield* Effect.sleep("600 millis")
        const [report] = yield* (yield* SessionMaintenance).run({ dryRun: true })
        assert.strictEqual(report?.pruned, 1, "x is past its time now")
        yield* waitUntil(sessions.list().pipe(Effect.map((rows) => !rows.some((r) => r.key === "agent:main:openai-user:x")), Effect.orDie), "x to be pruned by the schedule")
      }))
    })))

  it.live("a stray file under agents/ is no agent and stops no pass", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      yield* seed(home, [{ key: "agent:main:openai-user:old", ageDays: 40, transcriptBytes: 10 }])
      yield* Effect.promise(() => fs.writeFile(path.join(home, "agents", "backup"), "not a directory"))
      yield* withMaintenance(home, fake.url, {}, { firstPassAfter: "1 hour" }, Effect.gen(function*() {
        const summaries = yield* (yield* SessionMaintenance).run({})
        assert.deepStrictEqual(summaries.map((summary) => [summary.agentId, summary.pruned]), [["main", 1]])
      }))
    })))
})
