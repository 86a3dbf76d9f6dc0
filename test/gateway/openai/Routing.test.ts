import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import { buildAgentPrompt } from "../../../src/gateway/openai/Prompt.ts"
import { parseChatRequest } from "../../../src/gateway/openai/ChatRequest.ts"
import { agentOfModel, resolveAgent, resolveSession, userSegment } from "../../../src/gateway/openai/Routing.ts"

const agents = { agentIds: ["main", "work"], defaultAgentId: "main" }

describe("model to agent", () => {
  it("reads every accepted spelling", () => {
    assert.strictEqual(agentOfModel(undefined), "default")
    assert.strictEqual(agentOfModel("beamclaw"), "default")
    assert.strictEqual(agentOfModel("OpenClaw"), "default")
    assert.strictEqual(agentOfModel("beamclaw/default"), "default")
    assert.strictEqual(agentOfModel("beamclaw/Work"), "work")
    assert.strictEqual(agentOfModel("openclaw:work"), "work")
    assert.strictEqual(agentOfModel("agent:work"), "work")
    assert.isUndefined(agentOfModel("gpt-4o"))
    assert.isUndefined(agentOfModel("beamclaw/"))
    assert.isUndefined(agentOfModel("beamclaw/a/b"))
  })

  it("lets the header win, and refuses unknown agents", () => {
    const viaHeader = resolveAgent("beamclaw/work", "main", agents)
    assert.deepStrictEqual(Result.getOrUndefined(viaHeader), { agentId: "main", explicit: true })
    const unknown = resolveAgent("beamclaw/ghost", undefined, agents)
    assert.isTrue(Result.isFailure(unknown) && unknown.failure.status === 404)
    const invalid = resolveAgent("claude", undefined, agents)
    assert.isTrue(Result.isFailure(invalid) && invalid.failure.status === 400 && invalid.failure.param === "model")
  })
})

describe("session keys", () => {
  const base = { headerKey: undefined, user: undefined, agentId: "main", agentExplicit: false, agentIds: ["main", "work"], mainKey: "main" }

  it("is fresh per request without user or header, stable per user", () => {
    const a = Result.getOrUndefined(resolveSession(base))
    const b = Result.getOrUndefined(resolveSession(base))
    assert.match(a?.sessionKey ?? "", /^agent:main:openai:[0-9a-f-]{36}$/)
    assert.notStrictEqual(a?.sessionKey, b?.sessionKey)
    assert.strictEqual(Result.getOrUndefined(resolveSession({ ...base, user: "Alice" }))?.sessionKey, "agent:main:openai-user:alice")
  })

  it("keeps users with unsafe characters apart", () => {
    assert.strictEqual(userSegment("bob@example.com"), "bob@example.com")
    assert.notStrictEqual(userSegment("a b"), userSegment("a/b"))
    assert.match(userSegment("conv:123"), /^conv-123-[0-9a-f]{12}$/)
    assert.match(userSegment("   "), /^user-[0-9a-f]{12}$/)
  })

  it("takes an agent's key from the header, and refuses a clash with an explicit agent", () => {
    assert.strictEqual(Result.getOrUndefined(resolveSession({ ...base, headerKey: "agent:work:x" }))?.agentId, "work")
    assert.isTrue(Result.isFailure(resolveSession({ ...base, headerKey: "agent:work:x", agentExplicit: true })))
    assert.isTrue(Result.isFailure(resolveSession({ ...base, headerKey: "agent:ghost:x" })))
    assert.strictEqual(Result.getOrUndefined(resolveSession({ ...base, headerKey: "main" }))?.sessionKey, "agent:main:main")
  })
})

describe("prompt", () => {
  const messages = (body: unknown) => {
    const parsed = parseChatRequest({ model: "beamclaw", messages: body })
    if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
    return parsed.success.messages
  }

  it("is the last user message alone when there is no history", () => {
    const prompt = Result.getOrUndefined(buildAgentPrompt(messages([{ role: "user", content: "hi" }])))
    assert.strictEqual(prompt?.message, "hi")
    assert.isUndefined(prompt?.extraSystemPrompt)
  })

  it("drops what follows the current message and joins system texts", () => {
    const prompt = Result.getOrUndefined(buildAgentPrompt(messages([
      { role: "system", content: "A" },
      { role: "developer", content: [{ type: "text", text: "B" }] },
      { role: "user", content: "q" },
      { role: "assistant", content: "trailing" }
    ])))
    assert.strictEqual(prompt?.message, "q")
    assert.strictEqual(prompt?.extraSystemPrompt, "A\n\nB")
  })

  it("refuses a conversation with nothing to answer", () => {
    const failed = buildAgentPrompt(messages([{ role: "system", content: "only rules" }]))
    assert.isTrue(Result.isFailure(failed) && failed.failure.message === "Missing user message in `messages`.")
  })

  it("keeps an empty tool result, which completes its call", () => {
    const prompt = Result.getOrUndefined(buildAgentPrompt(messages([
      { role: "user", content: "go" },
      { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "run", arguments: "{}" } }] },
      { role: "tool", tool_call_id: "c1", content: "" }
    ])))
    assert.include(prompt?.message ?? "", "Tool:run: (no output)")
  })
})
