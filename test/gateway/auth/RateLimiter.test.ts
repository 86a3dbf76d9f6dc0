import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import * as RateLimiter from "../../../src/gateway/auth/RateLimiter.ts"

const policy = (overrides: Partial<RateLimiter.RateLimitPolicy> = {}) => Effect.succeed({ ...RateLimiter.defaultPolicy, ...overrides })

const fail = (limiter: RateLimiter.RateLimiter, address: string, times: number) =>
  Effect.forEach(Array.from({ length: times }), () => limiter.recordFailure("shared-secret", address), { discard: true })

describe("RateLimiter", () => {
  it.effect("locks an address out for lockoutMs after maxAttempts failures within windowMs", () =>
    Effect.gen(function*() {
      const limiter = RateLimiter.make(policy())
      yield* fail(limiter, "10.0.0.5", 9)
      const before = yield* limiter.check("shared-secret", "10.0.0.5")
      assert.deepStrictEqual(before, { allowed: true, remaining: 1 })
      yield* limiter.recordFailure("shared-secret", "10.0.0.5")
      assert.deepStrictEqual(yield* limiter.check("shared-secret", "10.0.0.5"), { allowed: false, retryAfterMs: 300_000 })
      yield* TestClock.adjust("299999 millis")
      assert.deepStrictEqual(yield* limiter.check("shared-secret", "10.0.0.5"), { allowed: false, retryAfterMs: 1 })
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(yield* limiter.check("shared-secret", "10.0.0.5"), { allowed: true, remaining: 10 })
    }))

  it.effect("failures older than windowMs do not count", () =>
    Effect.gen(function*() {
      const limiter = RateLimiter.make(policy())
      yield* fail(limiter, "10.0.0.5", 9)
      yield* TestClock.adjust("60001 millis")
      yield* fail(limiter, "10.0.0.5", 9)
      assert.deepStrictEqual(yield* limiter.check("shared-secret", "10.0.0.5"), { allowed: true, remaining: 1 })
    }))

  it.effect("a success (reset) clears the counter", () =>
    Effect.gen(function*() {
      const limiter = RateLimiter.make(policy())
      yield* fail(limiter, "10.0.0.5", 9)
      yield* limiter.reset("shared-secret", "10.0.0.5")
      yield* fail(limiter, "10.0.0.5", 9)
      assert.isTrue((yield* limiter.check("shared-secret", "10.0.0.5")).allowed)
    }))

  it.effect("counts per address and per scope; IPv4-mapped IPv6 is the same client", () =>
    Effect.gen(function*() {
      const limiter = RateLimiter.make(policy({ maxAttempts: 2 }))
      yield* fail(limiter, "::ffff:10.0.0.5", 2)
      assert.isFalse((yield* limiter.check("shared-secret", "10.0.0.5")).allowed)
      assert.isTrue((yield* limiter.check("shared-secret", "10.0.0.6")).allowed)
      assert.isTrue((yield* limiter.check("device-token", "10.0.0.5")).allowed)
    }))

  it.effect("loopback is exempt unless exemptLoopback is false", () =>
    Effect.gen(function*() {
      const exempt = RateLimiter.make(policy({ maxAttempts: 2 }))
      yield* fail(exempt, "127.0.0.1", 5)
      yield* fail(exempt, "::1", 5)
      assert.isTrue((yield* exempt.check("shared-secret", "127.0.0.1")).allowed)
      assert.isTrue((yield* exempt.check("shared-secret", "::1")).allowed)
      assert.strictEqual(yield* exempt.size, 0)
      const strict = RateLimiter.make(policy({ maxAttempts: 2, exemptLoopback: false }))
      yield* fail(strict, "127.0.0.1", 2)
      assert.deepStrictEqual(yield* strict.check("shared-secret", "127.0.0.1"), { allowed: false, retryAfterMs: 300_000 })
    }))

  it.effect("reads the policy on every call (a config edit applies at once)", () =>
    Effect.gen(function*() {
      let maxAttempts = 10
      const limiter = RateLimiter.make(Effect.sync(() => ({ ...RateLimiter.defaultPolicy, maxAttempts })))
      yield* fail(limiter, "10.0.0.5", 3)
      assert.isTrue((yield* limiter.check("shared-secret", "10.0.0.5")).allowed)
      maxAttempts = 3
      assert.deepStrictEqual(yield* limiter.check("shared-secret", "10.0.0.5"), { allowed: false, retryAfterMs: 300_000 })
    }))

  it.effect("memory stays bounded: expired entries are pruned and the table never exceeds maxEntries", () =>
    Effect.gen(function*() {
      const limiter = RateLimiter.make(policy(), { maxEntries: 3 })
      for (let i = 0; i < 50; i++) yield* limiter.recordFailure("shared-secret", `10.0.1.${i}`)
      assert.isAtMost(yield* limiter.size, 3)
      // Past the window, the next call prunes everything that no longer counts.
      yield* TestClock.adjust("61 seconds")
      yield* limiter.check("shared-secret", "10.9.9.9")
      assert.strictEqual(yield* limiter.size, 0)
    }))

  it.effect("when every entry is a live lockout, new addresses are refused rather than evicting lockouts", () =>
    Effect.gen(function*() {
      const limiter = RateLimiter.make(policy({ maxAttempts: 1 }), { maxEntries: 2 })
      yield* limiter.recordFailure("shared-secret", "10.0.0.1")
      yield* limiter.recordFailure("shared-secret", "10.0.0.2")
      yield* limiter.recordFailure("shared-secret", "10.0.0.3")
      assert.isFalse((yield* limiter.check("shared-secret", "10.0.0.1")).allowed, "the first lockout survives")
      assert.isFalse((yield* limiter.check("shared-secret", "10.0.0.2")).allowed)
      assert.deepStrictEqual(yield* limiter.check("shared-secret", "10.0.0.4"), { allowed: false, retryAfterMs: 300_000 })
      yield* TestClock.adjust("300 seconds")
      assert.isTrue((yield* limiter.check("shared-secret", "10.0.0.4")).allowed)
    }))
})
