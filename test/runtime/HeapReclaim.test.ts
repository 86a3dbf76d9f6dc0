/**
 * The heap is given back when the gateway goes quiet after turns: with a real
 * session host and turns against the fake Anthropic API, V8's memory-reducing
 * GC runs once per quiet spell when the heap has grown, and nothing runs
 * while the gateway stays idle.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Layer, Stream } from "effect"
import { HeapReclaim } from "../../src/runtime/HeapReclaim.ts"
import { Sessions } from "../../src/session/Sessions.ts"
import { FakeAnthropic } from "../support/FakeAnthropic.ts"
import * as TestApp from "../support/TestApp.ts"
import { waitUntil } from "../support/WaitUntil.ts"

const withReclaim = (growth: { readonly minGrowthBytes: number; readonly minGrowthRatio: number }, body: Effect.Effect<void, never, Sessions | HeapReclaim>) =>
  Effect.scoped(Effect.gen(function*() {
    const home = yield* TestApp.tempDir()
    const fake = yield* FakeAnthropic.make()
    yield* body.pipe(Effect.provide(
      HeapReclaim.layer({ quietAfter: Duration.millis(150), ...growth }).pipe(Layer.provideMerge(TestApp.layer({ home, anthropicUrl: fake.url })))
    ))
  }))

const turn = (key: string) =>
  Effect.gen(function*() {
    const sessions = yield* Sessions
    yield* Stream.runDrain(sessions.send(key, { runId: crypto.randomUUID(), text: "hello" })).pipe(Effect.orDie)
  })

describe("HeapReclaim", () => {
  it.live("runs the memory-reducing GC once the turns have stopped for the quiet time, then nothing while idle", () =>
    withReclaim({ minGrowthBytes: 0, minGrowthRatio: 0 }, Effect.gen(function*() {
      const reclaim = yield* HeapReclaim
      yield* Effect.sleep("400 millis")
      assert.deepInclude(yield* reclaim.stats, { checks: 0, reclaims: 0 }, "no turn has run yet")
      yield* turn("agent:main:a")
      yield* turn("agent:main:b")
      assert.strictEqual((yield* reclaim.stats).checks, 0, "not before the quiet time")
      yield* waitUntil(Effect.map(reclaim.stats, (stats) => stats.reclaims === 1), "the reclaim")
      const stats = yield* reclaim.stats
      assert.strictEqual(stats.checks, 1)
      assert.isDefined(stats.last)
      // Idle: no more looks, however long it stays so.
      yield* Effect.sleep("600 millis")
      assert.deepInclude(yield* reclaim.stats, { checks: 1, reclaims: 1 })
      // More work, another quiet spell, another look.
      yield* turn("agent:main:a")
      yield* waitUntil(Effect.map(reclaim.stats, (stats) => stats.checks === 2), "the second look")
      assert.strictEqual((yield* reclaim.stats).reclaims, 2)
    })))

  for (const [what, growth] of [["in bytes", { minGrowthBytes: 2 ** 40, minGrowthRatio: 0 }], ["as a share of the heap", { minGrowthBytes: 0, minGrowthRatio: 1000 }]] as const) {
    it.live(`leaves a heap that has not grown enough ${what} alone`, () =>
      withReclaim(growth, Effect.gen(function*() {
        const reclaim = yield* HeapReclaim
        yield* turn("agent:main:a")
        yield* waitUntil(Effect.map(reclaim.stats, (stats) => stats.checks === 1), "the look")
        assert.deepInclude(yield* reclaim.stats, { checks: 1, reclaims: 0 })
      })))
  }
})
