import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import { isContextOverflowMessage, parseRetryAfterMs, reasonForStatus } from "../../src/provider/HttpErrors.ts"
import { formatModelRef, parseModelRef } from "../../src/provider/ModelRef.ts"

describe("parseModelRef", () => {
  it("splits on the first slash, trims, and lower-cases only the provider", () => {
    assert.deepStrictEqual(parseModelRef("anthropic/claude-sonnet-4-5"), Result.succeed({ provider: "anthropic", model: "claude-sonnet-4-5" }))
    assert.deepStrictEqual(
      parseModelRef("  OpenRouter / meta-llama/Llama-3-70B "),
      Result.succeed({ provider: "openrouter", model: "meta-llama/Llama-3-70B" })
    )
    assert.deepStrictEqual(parseModelRef("ollama/llama3.1:8b"), Result.succeed({ provider: "ollama", model: "llama3.1:8b" }))
  })

  it("rejects references without a slash or with an empty part, saying which", () => {
    const message = (input: string) => {
      const result = parseModelRef(input)
      return Result.isFailure(result) ? result.failure : "parsed"
    }
    assert.include(message("claude-sonnet"), "expected \"provider/model\"")
    assert.include(message("/claude"), "provider part")
    assert.include(message(" anthropic/  "), "model part")
    assert.include(message(""), "expected \"provider/model\"")
  })

  it("formats back to provider/model", () => {
    assert.strictEqual(formatModelRef({ provider: "ollama", model: "qwen/qwen3" }), "ollama/qwen/qwen3")
  })
})

describe("HttpErrors", () => {
  const headers = (entries: Record<string, string>) => new Headers(entries)

  it("parses retry-after-ms, delta seconds and HTTP dates; ignores junk", () => {
    const now = Date.parse("2026-01-01T00:00:00Z")
    assert.strictEqual(parseRetryAfterMs(headers({ "retry-after-ms": "250", "retry-after": "9" }), now), 250)
    assert.strictEqual(parseRetryAfterMs(headers({ "retry-after": "2.5" }), now), 2500)
    assert.strictEqual(parseRetryAfterMs(headers({ "retry-after": "Thu, 01 Jan 2026 00:00:10 GMT" }), now), 10_000)
    assert.strictEqual(parseRetryAfterMs(headers({ "retry-after": "Wed, 31 Dec 2025 00:00:00 GMT" }), now), 0)
    assert.isUndefined(parseRetryAfterMs(headers({ "retry-after": "soon" }), now))
    assert.isUndefined(parseRetryAfterMs(headers({ "retry-after": "-3" }), now))
    assert.isUndefined(parseRetryAfterMs(headers({}), now))
    assert.isUndefined(parseRetryAfterMs(undefined, now))
  })

  it("classifies statuses and context-overflow wording", () => {
    assert.strictEqual(reasonForStatus(400, "prompt is too long: 1 > 0"), "ContextOverflow")
    assert.strictEqual(reasonForStatus(400, "the request exceeds the available context size"), "ContextOverflow")
    assert.strictEqual(reasonForStatus(400, "max_tokens must be positive"), "BadRequest")
    assert.strictEqual(reasonForStatus(413, "too large"), "ContextOverflow")
    assert.strictEqual(reasonForStatus(408, ""), "Timeout")
    assert.strictEqual(reasonForStatus(529, ""), "Overloaded")
    assert.strictEqual(reasonForStatus(502, ""), "ServerError")
    assert.isTrue(isContextOverflowMessage("This model's maximum context length is 8192 tokens"))
    assert.isFalse(isContextOverflowMessage("invalid tool name"))
  })
})
