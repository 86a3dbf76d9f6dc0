import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Stream } from "effect"
import type { TurnEvent } from "../../src/agent/TurnEvent.ts"
import { AppConfig } from "../../src/config/AppConfig.ts"
import * as RunLane from "../../src/session/RunLane.ts"
import { Sessions } from "../../src/session/Sessions.ts"
import { FakeAnthropic, textReply } from "../support/FakeAnthropic.ts"
import * as TestApp from "../support/TestApp.ts"

const waitUntil = (check: Effect.Effect<boolean>, what: string, timeoutMs = 5000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("10 millis")
    }
  })

const collect = (stream: Stream.Stream<TurnEvent, { readonly _tag: string }>) =>
  Stream.runCollect(stream).pipe(Effect.map((chunk) => [...chunk]), Effect.result)

describe("RunLane", () => {
  it("defaults to OpenClaw's max(8, parallelism x 4)", () => {
    assert.strictEqual(RunLane.defaultMaxConcurrent(1), 8)
    assert.strictEqual(RunLane.defaultMaxConcurrent(2), 8)
    assert.strictEqual(RunLane.defaultMaxConcurrent(16), 64)
  })

  it.live("runs at most `capacity` at once, the rest in arrival order, and follows a new size", () =>
    Effect.gen(function*() {
      const lane = yield* RunLane.make
      yield* lane.resize(2)
      const started: Array<number> = []
      const gates = yield* Effect.forEach([0, 1, 2, 3], () => Deferred.make<void>())
      const job = (i: number) =>
        lane.withSlot(Effect.gen(function*() {
          started.push(i)
          yield* Deferred.await(gates[i]!)
        }))
      const fibers: Array<Fiber.Fiber<void>> = []
      for (const i of [0, 1, 2, 3]) {
        fibers.push(yield* Effect.forkChild(job(i)))
        yield* Effect.sleep("5 millis")
      }
      yield* waitUntil(Effect.sync(() => started.length === 2), "two jobs to start")
      yield* Effect.sleep("20 millis")
      assert.deepStrictEqual(started, [0, 1], "the third and fourth wait")
      assert.deepStrictEqual(yield* lane.stats, { running: 2, capacity: 2 })
      yield* Deferred.succeed(gates[1]!, undefined)
      yield* waitUntil(Effect.sync(() => started.length === 3), "the third job")
      assert.deepStrictEqual(started, [0, 1, 2], "the first waiter goes first")
      // A larger lane lets the fourth in at once (the newcomer queues behind it).
      yield* lane.resize(3)
      const newcomer = yield* Effect.forkChild(lane.withSlot(Effect.void))
      yield* waitUntil(Effect.sync(() => started.length === 4), "the fourth job after the resize")
      for (const gate of gates) yield* Deferred.succeed(gate, undefined)
      yield* Effect.forEach([...fibers, newcomer], Fiber.join)
      assert.deepStrictEqual(yield* lane.stats, { running: 0, capacity: 3 })
    }))

  it.live("a smaller size admits nobody until the running turns are under it, and only resize changes it", () =>
    Effect.gen(function*() {
      const lane = yield* RunLane.make
      yield* lane.resize(2)
      const started: Array<number> = []
      const gates = yield* Effect.forEach([0, 1, 2], () => Deferred.make<void>())
      const job = (i: number) =>
        lane.withSlot(Effect.gen(function*() {
          started.push(i)
          yield* Deferred.await(gates[i]!)
        }))
      const first = yield* Effect.forkChild(job(0))
      const second = yield* Effect.forkChild(job(1))
      yield* waitUntil(Effect.sync(() => started.length === 2), "two jobs to start")
      // The config shrinks the lane to one; a turn arriving now (whatever policy it read before) waits.
      yield* lane.resize(1)
      const third = yield* Effect.forkChild(job(2))
      yield* Deferred.succeed(gates[0]!, undefined)
      yield* Fiber.join(first)
      yield* Effect.sleep("30 millis")
      assert.deepStrictEqual(started, [0, 1], "one turn still runs, which fills a lane of one")
      assert.deepStrictEqual(yield* lane.stats, { running: 1, capacity: 1 })
      yield* Deferred.succeed(gates[1]!, undefined)
      yield* Fiber.join(second)
      yield* waitUntil(Effect.sync(() => started.length === 3), "the third job once the lane has room")
      yield* Deferred.succeed(gates[2]!, undefined)
      yield* Fiber.join(third)
      assert.deepStrictEqual(yield* lane.stats, { running: 0, capacity: 1 })
    }))

  it.live("holds a session's turn until a slot is free, and an abort ends the wait without a model call", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      // The first turn streams slowly; the others answer at once.
      const fake = yield* FakeAnthropic.make((request) => request.index === 0 ? textReply("one two three four five", { delayMs: 60 }) : undefined)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        const first = yield* Effect.forkChild(collect(sessions.send("agent:main:a", { runId: "r1", text: "first" })))
        yield* waitUntil(Effect.sync(() => fake.requests.length === 1), "the first model call")
        const second = yield* Effect.forkChild(collect(sessions.send("agent:main:b", { runId: "r2", text: "second" })))
        const third = yield* Effect.forkChild(collect(sessions.send("agent:main:c", { runId: "r3", text: "third" })))
        yield* Effect.sleep("100 millis")
        assert.strictEqual(fake.requests.length, 1, "the other sessions wait for the slot")
        assert.deepStrictEqual(yield* sessions.lane, { running: 1, capacity: 1 })
        // An abort while waiting ends that turn; its model call never happens.
        assert.isTrue(yield* sessions.abort("agent:main:c"))
        const thirdResult = yield* Fiber.join(third)
        assert.isTrue(thirdResult._tag === "Failure" && thirdResult.failure._tag === "TurnAborted")
        const firstResult = yield* Fiber.join(first)
        const secondResult = yield* Fiber.join(second)
        assert.isTrue(firstResult._tag === "Success" && firstResult.success.some((e) => e._tag === "TurnCompleted"))
        assert.isTrue(secondResult._tag === "Success" && secondResult.success.some((e) => e._tag === "TurnCompleted" && e.text === "echo: second"))
        assert.strictEqual(fake.requests.length, 2, "the aborted turn made no model call")
        assert.deepStrictEqual(yield* sessions.lane, { running: 0, capacity: 1 })
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url, config: { agents: { defaults: { maxConcurrent: 1 } } } })))
    })))

  it.live("a larger maxConcurrent in the config lets a waiting turn start at once, without another turn asking", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      // The first turn streams slowly (about 0.5 s); the second answers at once.
      const fake = yield* FakeAnthropic.make((request) => request.index === 0 ? textReply("one two three four five six seven eight", { delayMs: 60 }) : undefined)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        const config = yield* AppConfig
        let firstDone = false
        const first = yield* Effect.forkChild(collect(sessions.send("agent:main:a", { runId: "r1", text: "first" })).pipe(
          Effect.tap(() => Effect.sync(() => { firstDone = true }))
        ))
        yield* waitUntil(Effect.sync(() => fake.requests.length === 1), "the first model call")
        const second = yield* Effect.forkChild(collect(sessions.send("agent:main:b", { runId: "r2", text: "second" })))
        yield* Effect.sleep("50 millis")
        assert.strictEqual(fake.requests.length, 1, "the second session waits for the one slot")
        const current = yield* config.get
        yield* config.set({ ...current, agents: { ...current.agents, defaults: { ...current.agents.defaults, maxConcurrent: 2 } } })
        yield* waitUntil(Effect.sync(() => fake.requests.length === 2), "the second model call after the resize", 300)
        assert.isFalse(firstDone, "the first turn is still streaming")
        assert.strictEqual((yield* sessions.lane).capacity, 2)
        yield* Fiber.join(first)
        yield* Fiber.join(second)
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url, config: { agents: { defaults: { maxConcurrent: 1 } } } })))
    })))
})
