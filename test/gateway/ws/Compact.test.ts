/**
 * sessions.compact over a real gateway (its own, with a tiny kept tail so a
 * short conversation has something to summarise): the LLM summary, the
 * not-compacted reasons, the admin scope, refused and bad params, and a
 * provider failure as an error with the history untouched.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { errorReply, type FakeAnthropicHandle, isSummaryRequest, startFakeAnthropic } from "../../support/FakeAnthropic.ts"
import { type StartedGateway, startGateway } from "../../support/Gateway.ts"
import { at, connect, list } from "./WsClient.ts"

let fake: FakeAnthropicHandle
let gateway: StartedGateway
/** When set, the next summary request gets this error. */
let refuseSummary = false


beforeAll(async () => {
  fake = await startFakeAnthropic((request) => {
    if (!isSummaryRequest(request)) return undefined
    return refuseSummary ? errorReply(400, "invalid_request_error", "summary refused") : { kind: "message", content: [{ type: "text", text: "SUMMARY via the gateway" }] }
  })
  gateway = await startGateway({ anthropicUrl: fake.url, config: { agents: { defaults: { compaction: { keepRecentTokens: 4 } } } } })
})

afterAll(async () => {
  await gateway?.stop()
  await fake?.close()
})

const chat = async (client: Awaited<ReturnType<typeof connect>>["client"], sessionKey: string, message: string) => {
  const runId = `run-${crypto.randomUUID()}`
  await client.request("chat.send", { sessionKey, message, idempotencyKey: runId })
  const waited = await client.request("agent.wait", { runId, timeoutMs: 10_000 })
  assert.strictEqual(at(waited, "payload", "status"), "ok")
}

describe("sessions.compact", () => {
  it("is listed in hello-ok and needs operator.admin", async () => {
    const { client, hello } = await connect(gateway.wsUrl, gateway.token)
    assert.include(list(at(hello, "payload", "features", "methods")), "sessions.compact")
    await client.close()
    const writer = await connect(gateway.wsUrl, gateway.token, { scopes: ["operator.write"] })
    const refused = await writer.client.request("sessions.compact", { key: "main" })
    assert.strictEqual(refused.error?.code, "FORBIDDEN")
    assert.strictEqual(at(refused.error?.details, "missingScope"), "operator.admin")
    await writer.client.close()
  })

  it("summarises the history: compacted with tokens before and after, sessions.changed, and chat.history keeps every message", async () => {
    const { client } = await connect(gateway.wsUrl, gateway.token)
    await chat(client, "cmp-a", "first-words-here")
    await chat(client, "cmp-a", "second-words-here")
    const before = fake.requests.length
    const response = await client.request("sessions.compact", { key: "cmp-a", instructions: "keep the names" })
    assert.strictEqual(response.ok, true, JSON.stringify(response.error))
    assert.strictEqual(at(response, "payload", "ok"), true)
    assert.strictEqual(at(response, "payload", "key"), "agent:main:cmp-a")
    assert.strictEqual(at(response, "payload", "compacted"), true)
    const tokensBefore = at(response, "payload", "result", "tokensBefore")
    const tokensAfter = at(response, "payload", "result", "tokensAfter")
    assert.isNumber(tokensBefore)
    assert.isNumber(tokensAfter)
    const summaryRequest = fake.requests.slice(before).find(isSummaryRequest)
    assert.include(JSON.stringify(summaryRequest?.body?.messages ?? []), "<focus>keep the names</focus>")
    await client.waitFor((frame) => frame.event === "sessions.changed" && at(frame, "payload", "reason") === "compact" && at(frame, "payload", "sessionKey") === "agent:main:cmp-a")

    // Nothing new since: not compacted again.
    assert.deepStrictEqual((await client.request("sessions.compact", { key: "cmp-a" })).payload, { ok: true, key: "agent:main:cmp-a", compacted: false, reason: "already compacted" })
    // The next turn is made from the summary.
    await chat(client, "cmp-a", "third-words-here")
    const sent = JSON.stringify(fake.requests.at(-1)?.body?.messages ?? [])
    assert.include(sent, "SUMMARY via the gateway")
    assert.notInclude(sent, "first-words-here")
    const history = await client.request("chat.history", { sessionKey: "cmp-a" })
    assert.strictEqual(list(at(history, "payload", "messages")).length, 6, "the transcript keeps every original message")
    const got = await client.request("sessions.get", { key: "cmp-a" })
    assert.strictEqual(at(got, "payload", "entry", "compactionCount"), 1)
    await client.close()
  })

  it("an empty session is not compacted; bad and unsupported params are refused by name", async () => {
    const { client } = await connect(gateway.wsUrl, gateway.token)
    assert.deepStrictEqual((await client.request("sessions.compact", { key: "cmp-empty" })).payload, { ok: true, key: "agent:main:cmp-empty", compacted: false, reason: "no transcript" })
    const maxLines = await client.request("sessions.compact", { key: "cmp-empty", maxLines: 200 })
    assert.strictEqual(maxLines.error?.code, "INVALID_REQUEST")
    assert.match(maxLines.error?.message ?? "", /maxLines is not supported/)
    assert.match((await client.request("sessions.compact", {})).error?.message ?? "", /^invalid sessions\.compact params/)
    assert.match((await client.request("sessions.compact", { key: "x", maxLines: 0 })).error?.message ?? "", /^invalid sessions\.compact params/)
    assert.match((await client.request("sessions.compact", { key: "x", instructions: 7 })).error?.message ?? "", /^invalid sessions\.compact params/)
    assert.strictEqual((await client.request("sessions.compact", { key: "x", agentId: "nobody" })).error?.message, "unknown agent id \"nobody\"")
    await client.close()
  })

  it("a provider failure is an error response and leaves the history as it was", async () => {
    const { client } = await connect(gateway.wsUrl, gateway.token)
    await chat(client, "cmp-fail", "keep-me-whole")
    refuseSummary = true
    try {
      const failed = await client.request("sessions.compact", { key: "cmp-fail" })
      assert.strictEqual(failed.ok, false)
      assert.strictEqual(failed.error?.code, "UNAVAILABLE")
      assert.include(failed.error?.message ?? "", "summary refused")
    } finally {
      refuseSummary = false
    }
    const got = await client.request("sessions.get", { key: "cmp-fail" })
    assert.strictEqual(at(got, "payload", "entry", "compactionCount"), 0)
    await chat(client, "cmp-fail", "next-one")
    assert.include(JSON.stringify(fake.requests.at(-1)?.body?.messages ?? []), "keep-me-whole")
    await client.close()
  })
})
