/**
 * The hub's registry of runs (agent.wait and chat.history look runs up by id):
 * running runs stay, finished ones are kept up to 1,000 (OpenClaw's dedupe
 * window) and for five minutes, the oldest-ended dropped first.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Hub from "../../../src/gateway/ws/Hub.ts"
import { DetachedRuns } from "../../../src/runtime/DetachedRuns.ts"

const makeHub = Hub.make({ version: "test", tickIntervalMs: 30_000, handshakeTimeoutMs: 10_000 }).pipe(Effect.provide(DetachedRuns.layer))

describe("Hub runs", () => {
  it.effect("keeps every running run and the 1,000 most recently finished, dropping the earliest to end first", () =>
    Effect.gen(function*() {
      const hub = yield* makeHub
      const running = yield* hub.newRun("still-running", "agent:main:x", "chat")
      const finished: Array<Hub.RunRecord> = []
      for (let i = 0; i < 1005; i++) finished.push(yield* hub.newRun(`run-${i}`, `agent:main:s${i}`, "chat"))
      // They end in reverse order: run-1004 first, run-0 last.
      for (const run of [...finished].reverse()) {
        run.status = "ok"
        run.endedAt = Date.now()
        hub.runEnded(run)
      }
      yield* hub.newRun("new", "agent:main:y", "chat")
      assert.strictEqual(hub.runs.get("still-running"), running)
      assert.isTrue(hub.runs.has("new"))
      // The five that ended first are gone; the rest are kept.
      for (const id of ["run-1004", "run-1003", "run-1002", "run-1001", "run-1000"]) assert.isFalse(hub.runs.has(id), id)
      for (const id of ["run-999", "run-500", "run-0"]) assert.isTrue(hub.runs.has(id), id)
      assert.strictEqual(hub.runs.size, 1002)
    }))

  it.effect("drops a finished run five minutes after it ended, even under the count", () =>
    Effect.gen(function*() {
      const hub = yield* makeHub
      const old = yield* hub.newRun("old", "agent:main:a", "chat")
      const recent = yield* hub.newRun("recent", "agent:main:b", "chat")
      old.status = "ok"
      old.endedAt = Date.now() - 5 * 60_000 - 1
      hub.runEnded(old)
      recent.status = "error"
      recent.endedAt = Date.now()
      hub.runEnded(recent)
      yield* hub.newRun("next", "agent:main:c", "chat")
      assert.isFalse(hub.runs.has("old"))
      assert.isTrue(hub.runs.has("recent"))
    }))
})
