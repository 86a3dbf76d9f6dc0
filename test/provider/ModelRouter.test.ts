import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Redacted, Result, Stream } from "effect"
import { TestClock } from "effect/testing"
import type { AssistantMessage } from "../../src/agent/Message.ts"
import { makeAnthropicProvider } from "../../src/provider/Anthropic.ts"
import { type ModelRef, parseModelRef } from "../../src/provider/ModelRef.ts"
import { makeModelRouter, type RetryInfo, type RouterEvent } from "../../src/provider/ModelRouter.ts"
import {
  type Provider,
  ProviderError,
  type ProviderErrorReason,
  type ProviderEvent
} from "../../src/provider/Provider.ts"
import * as FakeAnthropic from "../support/FakeAnthropic.ts"

const ref = (s: string): ModelRef => Result.getOrThrow(parseModelRef(s))

const request = {
  system: "",
  messages: [{ role: "user" as const, content: "hi", timestamp: 0 }],
  tools: [],
  maxTokens: 100
}

const done = (provider: string, model: string, text: string): ProviderEvent => {
  const message: AssistantMessage = {
    role: "assistant",
    content: [{ type: "text", text }],
    provider,
    model,
    usage: { input: 1, output: 1, cacheRead: 0, cacheWrite: 0, totalTokens: 2 },
    stopReason: "stop",
    timestamp: 0
  }
  return { _tag: "Done", message, stopReason: "stop", usage: message.usage }
}

type Step =
  | { readonly fail: ProviderErrorReason; readonly retryAfterMs?: number; readonly afterText?: string; readonly afterStarted?: boolean }
  | { readonly text: string }

/**
 * A test Provider following a per-call script; the last step repeats. It
 * records the model of every call.
 */
const scripted = (id: string, steps: ReadonlyArray<Step>) => {
  const calls: Array<string> = []
  const provider: Provider = {
    id,
    stream: (req) =>
      Stream.suspend(() => {
        calls.push(req.model)
        const step = steps[Math.min(calls.length - 1, steps.length - 1)]
        if (step === undefined) return Stream.empty
        if ("text" in step) {
          return Stream.make<Array<ProviderEvent>>({ _tag: "TextDelta", text: step.text }, done(id, req.model, step.text))
        }
        const error = new ProviderError({
          provider: id,
          model: req.model,
          reason: step.fail,
          message: `${step.fail} from ${id}`,
          ...(step.retryAfterMs !== undefined ? { retryAfterMs: step.retryAfterMs } : {})
        })
        const started: ReadonlyArray<ProviderEvent> = step.afterStarted === true ? [{ _tag: "Started" }] : []
        const prefix: Stream.Stream<ProviderEvent> = Stream.fromIterable(
          step.afterText === undefined ? started : [...started, { _tag: "TextDelta", text: step.afterText }]
        )
        return prefix.pipe(Stream.concat(Stream.fail(error)))
      })
  }
  return { provider, calls }
}

const routerOf = (...providers: ReadonlyArray<Provider>) => {
  const retries: Array<RetryInfo> = []
  const router = makeModelRouter({
    providers: new Map(providers.map((p) => [p.id, p])),
    onRetry: (retry) => Effect.sync(() => retries.push(retry))
  })
  return Object.assign(router, { retries })
}

const tags = (events: ReadonlyArray<RouterEvent>) => events.map((e) => e._tag)

describe("ModelRouter", () => {
  it.effect("waits exactly the server's retry-after before retrying a rate-limited model", () =>
    Effect.gen(function*() {
      const a = scripted("a", [{ fail: "RateLimited", retryAfterMs: 5000 }, { text: "ok" }])
      const router = routerOf(a.provider)
      const fiber = yield* Effect.forkChild(Stream.runCollect(router.stream([ref("a/m1")], request)))
      yield* TestClock.adjust("4999 millis")
      assert.strictEqual(a.calls.length, 1)
      yield* TestClock.adjust("1 millis")
      const events = yield* Fiber.join(fiber)
      assert.strictEqual(a.calls.length, 2)
      assert.deepStrictEqual(tags(events), ["TextDelta", "Done"])
      assert.deepStrictEqual(router.retries, [
        { model: "a/m1", attempt: 2, delayMs: 5000, reason: "RateLimited", message: "RateLimited from a" }
      ])
    }))

  it.effect("backs off exponentially without retry-after, then fails over once attempts run out", () =>
    Effect.gen(function*() {
      const a = scripted("a", [{ fail: "Overloaded" }])
      const b = scripted("b", [{ text: "from b" }])
      const router = routerOf(a.provider, b.provider)
      const fiber = yield* Effect.forkChild(
        Stream.runCollect(router.stream([ref("a/m1"), ref("b/m2")], request))
      )
      yield* TestClock.adjust("999 millis")
      assert.strictEqual(a.calls.length, 1)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(a.calls.length, 2)
      yield* TestClock.adjust("1999 millis")
      assert.strictEqual(a.calls.length, 2)
      yield* TestClock.adjust("1 millis")
      const events = yield* Fiber.join(fiber)
      assert.strictEqual(a.calls.length, 3)
      assert.deepStrictEqual(b.calls, ["m2"])
      assert.deepStrictEqual(tags(events), ["Failover", "TextDelta", "Done"])
      assert.deepStrictEqual(router.retries.map((r) => r.delayMs), [1000, 2000])
      const failover = events[0]
      assert.deepStrictEqual(
        failover?._tag === "Failover" ? [failover.from, failover.to, failover.reason] : [],
        ["a/m1", "b/m2", "Overloaded"]
      )
      const last = events.at(-1)
      assert.strictEqual(last?._tag === "Done" ? last.message.provider : "", "b")
    }))

  it.effect("fails over at once on Auth without retrying", () =>
    Effect.gen(function*() {
      const a = scripted("a", [{ fail: "Auth" }])
      const b = scripted("b", [{ text: "ok" }])
      const events = yield* Stream.runCollect(
        routerOf(a.provider, b.provider).stream([ref("a/m1"), ref("b/m2")], request)
      )
      assert.strictEqual(a.calls.length, 1)
      assert.deepStrictEqual(tags(events), ["Failover", "TextDelta", "Done"])
    }))

  for (const reason of ["BadRequest", "ContextOverflow"] as const) {
    it.effect(`${reason} neither retries nor fails over`, () =>
      Effect.gen(function*() {
        const a = scripted("a", [{ fail: reason }])
        const b = scripted("b", [{ text: "ok" }])
        const error = yield* Stream.runCollect(
          routerOf(a.provider, b.provider).stream([ref("a/m1"), ref("b/m2")], request)
        ).pipe(Effect.flip)
        assert.strictEqual(error.reason, reason)
        assert.strictEqual(a.calls.length, 1)
        assert.strictEqual(b.calls.length, 0)
      }))
  }

  it.effect("never retries or fails over once the attempt has streamed something", () =>
    Effect.gen(function*() {
      const a = scripted("a", [{ fail: "Connection", afterText: "Hello wor" }])
      const b = scripted("b", [{ text: "ok" }])
      const seen: Array<RouterEvent> = []
      const error = yield* Stream.runForEach(
        routerOf(a.provider, b.provider).stream([ref("a/m1"), ref("b/m2")], request),
        (e) => Effect.sync(() => seen.push(e))
      ).pipe(Effect.flip)
      assert.strictEqual(error.reason, "Connection")
      assert.deepStrictEqual(tags(seen), ["TextDelta"])
      assert.strictEqual(a.calls.length, 1)
      assert.strictEqual(b.calls.length, 0)
    }))

  it.effect("an answer that began (Started) but failed before any output still fails over", () =>
    Effect.gen(function*() {
      const a = scripted("a", [{ fail: "Auth", afterStarted: true }])
      const b = scripted("b", [{ text: "ok" }])
      const events = yield* Stream.runCollect(routerOf(a.provider, b.provider).stream([ref("a/m1"), ref("b/m2")], request))
      assert.deepStrictEqual(tags(events), ["Started", "Failover", "TextDelta", "Done"])
      assert.strictEqual(b.calls.length, 1)
    }))

  it.effect("a retry-after beyond the cap skips the wait and fails over", () =>
    Effect.gen(function*() {
      const a = scripted("a", [{ fail: "RateLimited", retryAfterMs: 3_600_000 }])
      const b = scripted("b", [{ text: "ok" }])
      const events = yield* Stream.runCollect(
        routerOf(a.provider, b.provider).stream([ref("a/m1"), ref("b/m2")], request)
      )
      assert.strictEqual(a.calls.length, 1)
      assert.deepStrictEqual(tags(events), ["Failover", "TextDelta", "Done"])
    }))

  it.effect("an unknown provider fails with NotFound naming the configured ones, and fails over", () =>
    Effect.gen(function*() {
      const a = scripted("anthropic", [{ text: "ok" }])
      const b = scripted("ollama", [{ text: "ok" }])
      const router = routerOf(a.provider, b.provider)
      const error = yield* Stream.runCollect(router.stream([ref("opnai/gpt-5")], request)).pipe(Effect.flip)
      assert.strictEqual(error.reason, "NotFound")
      assert.include(error.message, "opnai")
      assert.include(error.message, "anthropic, ollama")
      const events = yield* Stream.runCollect(router.stream([ref("opnai/gpt-5"), ref("ollama/llama3")], request))
      assert.deepStrictEqual(tags(events), ["Failover", "TextDelta", "Done"])
      assert.deepStrictEqual(b.calls, ["llama3"])
    }))

  it.effect("when every model fails, the error is the last one and mentions the earlier failures", () =>
    Effect.gen(function*() {
      const a = scripted("a", [{ fail: "Auth" }])
      const b = scripted("b", [{ fail: "NotFound" }])
      const error = yield* Stream.runCollect(
        routerOf(a.provider, b.provider).stream([ref("a/m1"), ref("b/m2")], request)
      ).pipe(Effect.flip)
      assert.strictEqual(error.reason, "NotFound")
      assert.strictEqual(error.provider, "b")
      assert.include(error.message, "a/m1: Auth")
    }))

  it.effect("an empty chain fails with NotFound", () =>
    Effect.gen(function*() {
      const error = yield* Stream.runCollect(routerOf().stream([], request)).pipe(Effect.flip)
      assert.strictEqual(error.reason, "NotFound")
    }))
})

describe("ModelRouter over the Anthropic provider and the fake API", () => {
  const routerFor = (fake: FakeAnthropic.FakeAnthropicHandle) =>
    makeModelRouter({
      providers: new Map([["anthropic", makeAnthropicProvider({ id: "anthropic", apiKey: Redacted.make("k"), baseUrl: fake.url })]]),
      retry: { baseDelayMs: 10, maxAttempts: 2 },
      onRetry: () => Effect.void
    })
  const text = (events: ReadonlyArray<RouterEvent>) => events.map((e) => e._tag === "TextDelta" ? e.text : "").join("")

  it.live("honours a 429 retry-after-ms and then streams the answer", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAnthropic.make([
        FakeAnthropic.errorReply(429, "rate_limit_error", "slow down", { "retry-after-ms": "150" })
      ])
      const started = Date.now()
      const events = yield* Stream.runCollect(routerFor(fake).stream([ref("anthropic/claude-a")], request))
      assert.isAtLeast(Date.now() - started, 140)
      assert.strictEqual(text(events), "echo: hi")
      assert.strictEqual(fake.requests.length, 2)
    }))

  it.live("retries a 529 overloaded_error and succeeds", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAnthropic.make([FakeAnthropic.overloaded(), FakeAnthropic.textReply("second time lucky")])
      const events = yield* Stream.runCollect(routerFor(fake).stream([ref("anthropic/claude-a")], request))
      assert.deepStrictEqual(tags(events).slice(0, 2), ["Started", "TextDelta"], "the answer begins, then its text")
      assert.strictEqual(text(events), "second time lucky")
      assert.strictEqual(fake.requests.length, 2)
    }))

  it.live("fails over to the fallback model when the primary stays overloaded", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAnthropic.make((req) =>
        req.body?.model === "claude-primary" ? FakeAnthropic.overloaded() : FakeAnthropic.textReply("fallback here")
      )
      const events = yield* Stream.runCollect(
        routerFor(fake).stream([ref("anthropic/claude-primary"), ref("Anthropic/claude-fallback")], request)
      )
      assert.deepStrictEqual(fake.requests.map((r) => r.body?.model), ["claude-primary", "claude-primary", "claude-fallback"])
      assert.strictEqual(text(events), "fallback here")
      const last = events.at(-1)
      assert.strictEqual(last?._tag === "Done" ? last.message.model : "", "claude-fallback")
    }))

  it.live("an overloaded_error in the stream right after message_start fails over: the answer had begun but nothing was said", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAnthropic.make((req) =>
        req.body?.model === "claude-primary"
          ? { kind: "streamError", type: "overloaded_error", message: "Overloaded" }
          : FakeAnthropic.textReply("fallback here")
      )
      const events = yield* Stream.runCollect(
        routerFor(fake).stream([ref("anthropic/claude-primary"), ref("anthropic/claude-fallback")], request)
      )
      assert.strictEqual(fake.requests.at(-1)?.body?.model, "claude-fallback")
      assert.include(tags(events), "Failover")
      assert.strictEqual(text(events), "fallback here")
    }))

  it.live("a 400 invalid_request_error is sent once and not failed over", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAnthropic.make([
        FakeAnthropic.errorReply(400, "invalid_request_error", "tools.0.name: String should match pattern")
      ])
      const error = yield* Stream.runCollect(
        routerFor(fake).stream([ref("anthropic/claude-a"), ref("anthropic/claude-b")], request)
      ).pipe(Effect.flip)
      assert.strictEqual(error.reason, "BadRequest")
      assert.strictEqual(fake.requests.length, 1)
    }))
})
