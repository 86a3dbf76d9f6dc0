/**
 * How the x-openclaw-model / x-beamclaw-model header names a model, over the
 * catalog `/new <model>` and sessions.patch share: aliases, the allowlist of
 * agents.defaults.models, bare ids, known providers.
 */
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import type { ModelCatalog } from "../../../src/channels/ChatCommands.ts"
import { resolveModelOverride } from "../../../src/gateway/openai/ModelOverride.ts"

const open: ModelCatalog = {
  models: ["anthropic/claude-sonnet-5-5", "openai/gpt-6"],
  aliases: new Map([["fast", "anthropic/claude-haiku-9"]]),
  providers: new Set(["anthropic", "openai", "ollama"]),
  restricted: false
}

const allowlisted: ModelCatalog = {
  models: ["anthropic/claude-sonnet-5-5", "anthropic/claude-haiku-9", "openai/gpt-6"],
  aliases: new Map([["fast", "anthropic/claude-haiku-9"]]),
  providers: new Set(["anthropic", "openai"]),
  restricted: true
}

const resolved = (value: string, catalog: ModelCatalog) => Result.getOrUndefined(resolveModelOverride(value, "x-openclaw-model", catalog))
const refused = (value: string, catalog: ModelCatalog, header = "x-openclaw-model") => {
  const result = resolveModelOverride(value, header, catalog)
  if (Result.isSuccess(result)) throw new Error(`expected ${value} to be refused, got ${result.success}`)
  assert.strictEqual(result.failure.status, 400)
  assert.strictEqual(result.failure.type, "invalid_request_error")
  assert.strictEqual(result.failure.param, header)
  assert.include(result.failure.message, header)
  return result.failure
}

describe("x-openclaw-model without an allowlist", () => {
  it("takes aliases, provider/model ids of known providers and bare ids", () => {
    assert.strictEqual(resolved("FAST", open), "anthropic/claude-haiku-9")
    assert.strictEqual(resolved("ollama/llama3.1:8b", open), "ollama/llama3.1:8b")
    assert.strictEqual(resolved("OpenAI/gpt-6", open), "openai/gpt-6")
    assert.strictEqual(resolved("ollama/meta/llama", open), "ollama/meta/llama")
    // A bare id: a configured model with that id, else the provider of the agent's primary.
    assert.strictEqual(resolved("gpt-6", open), "openai/gpt-6")
    assert.strictEqual(resolved("claude-opus-9", open), "anthropic/claude-opus-9")
  })

  it("refuses unknown providers and malformed refs", () => {
    assert.strictEqual(refused("nosuch/model", open).code, "model_not_found")
    assert.strictEqual(refused("anthropic/", open, "x-beamclaw-model").code, "invalid_model")
    assert.strictEqual(refused("/claude", open).code, "invalid_model")
  })
})

describe("x-openclaw-model with an allowlist (agents.defaults.models)", () => {
  it("takes listed models, their aliases and their bare ids", () => {
    assert.strictEqual(resolved("fast", allowlisted), "anthropic/claude-haiku-9")
    assert.strictEqual(resolved("anthropic/claude-haiku-9", allowlisted), "anthropic/claude-haiku-9")
    assert.strictEqual(resolved("claude-haiku-9", allowlisted), "anthropic/claude-haiku-9")
  })

  it("refuses anything else, listing what is allowed", () => {
    const error = refused("anthropic/claude-opus-9", allowlisted)
    assert.strictEqual(error.code, "model_not_allowed")
    assert.include(error.message, "anthropic/claude-haiku-9")
    assert.strictEqual(refused("claude-opus-9", allowlisted).code, "model_not_allowed")
  })
})
