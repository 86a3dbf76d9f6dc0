import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Scheduler, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import type { TurnEvent } from "../../src/agent/TurnEvent.ts"
import { AppConfig } from "../../src/config/AppConfig.ts"
import * as RunLane from "../../src/session/RunLane.ts"
import { Sessions } from "../../src/session/Sessions.ts"
import { FakeAnthropic, textReply } from "../support/FakeAnthropic.ts"
import * as TestApp from "../support/TestApp.ts"
import { waitUntil } from "../support/WaitUntil.ts"

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
      const lane = yield* RunLane.make()
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
      const lane = yield* RunLane.make()
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

  it("starts max(2, parallelism) turns at once by default", () => {
    assert.strictEqual(RunLane.defaultStartCapacity(1), 2)
    assert.strictEqual(RunLane.defaultStartCapacity(2), 2)
    assert.strictEqual(RunLane.defaultStartCapacity(16), 16)
  })

  it.effect("lets `startCapacity` turns start at once; a start slot comes back when released, after the hold time, or when the scope closes", () =>
    Effect.gen(function*() {
      const lane = yield* RunLane.make({ startCapacity: 2, startHold: Duration.seconds(1) })
      const acquired: Array<string> = []
      const start = (name: string, scope: Scope.Closeable) =>
        lane.starting.pipe(Scope.provide(scope), Effect.tap(() => Effect.sync(() => acquired.push(name))))
      const [a, b, c, d, e] = yield* Effect.forEach([1, 2, 3, 4, 5], () => Scope.make())
      const releaseA = yield* start("a", a!)
      yield* start("b", b!)
      const waitingC = yield* Effect.forkChild(start("c", c!))
      yield* TestClock.adjust("500 millis")
      assert.deepStrictEqual(acquired, ["a", "b"], "both start slots are taken")
      // Released (a's answer began): c starts at once; releasing twice gives back one slot only.
      yield* releaseA
      yield* releaseA
      yield* Fiber.join(waitingC)
      const waitingD = yield* Effect.forkChild(start("d", d!))
      yield* TestClock.adjust("499 millis")
      assert.deepStrictEqual(acquired, ["a", "b", "c"], "b and c hold the two slots")
      // b has held its slot for the whole hold time: it goes back, and d starts.
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(waitingD)
      assert.deepStrictEqual(acquired, ["a", "b", "c", "d"])
      // Closing a scope gives its slot back too.
      const waitingE = yield* Effect.forkChild(start("e", e!))
      yield* Scope.close(c!, Exit.void)
      yield* Fiber.join(waitingE)
      assert.deepStrictEqual(acquired, ["a", "b", "c", "d", "e"])
      for (const scope of [a, b, d, e]) yield* Scope.close(scope!, Exit.void)
    }))

  it.live("an interrupt landing as a slot is granted never loses the slot (start slots and run slots)", () =>
    Effect.gen(function*() {
      // A tiny operation budget makes the waiting fiber yield right after it is granted the slot, where the
      // interrupt can land; every budget position is tried.
      for (const which of ["starting", "hold"] as const) {
        for (let ticks = 0; ticks < 12; ticks++) {
          const lane = yield* RunLane.make({ startCapacity: 1, startHold: Duration.hours(1) })
          yield* lane.resize(1)
          const take = which === "starting" ? Effect.asVoid(lane.starting) : lane.hold
          const first = yield* Scope.make()
          yield* take.pipe(Scope.provide(first))
          const second = yield* Scope.make()
          const waiting = yield* Effect.forkChild(take.pipe(Scope.provide(second), Effect.provideService(Scheduler.MaxOpsBeforeYield, 3)))
          yield* Effect.yieldNow
          yield* Scope.close(first, Exit.void)
          for (let i = 0; i < ticks; i++) yield* Effect.yieldNow
          yield* Fiber.interrupt(waiting)
          yield* Scope.close(second, Exit.void)
          const third = yield* Scope.make()
          const got = yield* take.pipe(Scope.provide(third), Effect.timeoutOption("200 millis"))
          assert.strictEqual(got._tag, "Some", `${which}: the slot is free again (interrupt after ${ticks} yields)`)
          yield* Scope.close(third, Exit.void)
        }
      }
    }))

  it.effect("quiet waits for a turn to end, then for `after` without any turn; an idle lane waits for the next one", () =>
    Effect.gen(function*() {
      const lane = yield* RunLane.make()
      let quietAt: number | undefined
      const waitQuiet = () =>
        Effect.forkChild(lane.quiet(Duration.seconds(5)).pipe(Effect.andThen(Effect.sync(() => { quietAt = Date.now() }))))
      let watcher = yield* waitQuiet()
      // No turn yet: an idle lane is not "quiet after work", however long it idles.
      yield* TestClock.adjust("1 minute")
      assert.isUndefined(quietAt)
      const gate = yield* Deferred.make<void>()
      const first = yield* Effect.forkChild(lane.withSlot(Deferred.await(gate)))
      yield* TestClock.adjust("10 seconds")
      assert.isUndefined(quietAt, "a turn is still running")
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(first)
      yield* TestClock.adjust("3 seconds")
      // Another turn 3 s after the first ended restarts the wait from its own end.
      yield* lane.withSlot(Effect.void)
      yield* TestClock.adjust("4 seconds")
      assert.isUndefined(quietAt, "4 s after the second turn")
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(watcher)
      assert.isDefined(quietAt)
      // The next wait needs new work first.
      quietAt = undefined
      watcher = yield* waitQuiet()
      yield* TestClock.adjust("1 minute")
      assert.isUndefined(quietAt)
      yield* lane.withSlot(Effect.void)
      yield* TestClock.adjust("5 seconds")
      yield* Fiber.join(watcher)
      assert.isDefined(quietAt)
    }))

  it.live("a slow model does not hold up the turns behind it: start slots are held for the start-up only", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      // Each answer begins after 600 ms, as a real model's first token may. With the start
      // slots held until the answer began, three rounds of start slots would take 1.8 s.
      const turns = RunLane.defaultStartCapacity() * 3
      const fake = yield* FakeAnthropic.make(() => textReply("ok", { firstByteDelayMs: 600 }))
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        const started = Date.now()
        const results = yield* Effect.forEach(
          Array.from({ length: turns }, (_, i) => i),
          (i) => collect(sessions.send(`agent:main:s${i}`, { runId: `r${i}`, text: `turn ${i}` })),
          { concurrency: "unbounded" }
        )
        const elapsed = Date.now() - started
        assert.isTrue(results.every((result) => result._tag === "Success" && result.success.some((e) => e._tag === "TurnCompleted")))
        assert.strictEqual(fake.requests.length, turns)
        assert.isBelow(elapsed, 1500, `${turns} turns against a model that answers after 600 ms`)
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url, config: { agents: { defaults: { maxConcurrent: turns } } } })))
    })))

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
