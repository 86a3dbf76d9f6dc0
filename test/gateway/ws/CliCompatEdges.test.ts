/**
 * The edges of the OpenClaw CLI surfaces (CliCompat.test.ts): what a client
 * without admin sees of `status`, a session replaced while a delete or patch
 * naming its id waits, OpenClaw's names for thinking levels, and method
 * names the gateway does not have that every object has.
 */
import { assert, describe, it } from "@effect/vitest"
import { thinkingBudgets } from "../../../src/provider/Anthropic.ts"
import { gatewayForFile } from "../../support/Gateway.ts"
import { at, connect, list } from "./WsClient.ts"

const env = gatewayForFile()

type Client = Awaited<ReturnType<typeof connect>>["client"]

const pollUntil = async (check: () => boolean, what: string) => {
  const deadline = Date.now() + 10_000
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

const send = async (client: Client, sessionKey: string, message: string, runId: string) => {
  const started = await client.request("chat.send", { sessionKey, message, idempotencyKey: runId })
  assert.strictEqual(started.ok, true, JSON.stringify(started.error))
  assert.strictEqual(at(await client.request("agent.wait", { runId, timeoutMs: 10_000 }), "payload", "status"), "ok")
}

const sessionIdOf = async (client: Client, key: string) => at(await client.request("sessions.get", { key }), "payload", "entry", "sessionId")

/**
 * A turn that holds the session (the fake model answers after 2 s), and behind it
 * in the session's mailbox a `/new` turn that replaces the session: what is
 * sent next reaches the session only after it has been replaced.
 */
const replaceBehindARunningTurn = async (client: Client, key: string, tag: string) => {
  const before = env.fake.requests.length
  env.fake.push({ kind: "message", content: [{ type: "text", text: "late" }], firstByteDelayMs: 2000 })
  await client.request("chat.send", { sessionKey: key, message: "take your time", idempotencyKey: `${tag}-hang` })
  await pollUntil(() => env.fake.requests.length > before, "the held turn to reach the model")
  await client.request("chat.send", { sessionKey: key, message: "/new again", idempotencyKey: `${tag}-new` })
  // The run is started by a fiber of the gateway: give it the moment it takes to post the turn.
  await new Promise((resolve) => setTimeout(resolve, 500))
}

describe("status for a client without admin", () => {
  it("leaves out session paths, the default model and recent session rows, as OpenClaw's redacted summary; admin sees them", async () => {
    const admin = await connect(env.gateway.wsUrl, env.gateway.token)
    await send(admin.client, "status-row", "hello", "run-status-row")
    const full = await admin.client.request("status", { includeCliProjection: true })
    assert.include(list(at(full, "payload", "sessions", "recent")).map((row) => at(row, "key")), "agent:main:status-row")
    assert.isString(at(full, "payload", "sessions", "byAgent", 0, "path"))
    assert.isString(at(full, "payload", "sessions", "defaults", "model"))
    await admin.client.close()

    const { client } = await connect(env.gateway.wsUrl, env.gateway.token, { scopes: ["operator.read"] })
    const status = await client.request("status", { includeCliProjection: true })
    assert.strictEqual(status.ok, true, JSON.stringify(status.error))
    const sessions = at(status, "payload", "sessions")
    assert.deepStrictEqual(at(sessions, "paths"), [])
    assert.deepStrictEqual(at(sessions, "recent"), [])
    assert.deepStrictEqual(at(sessions, "defaults"), { model: null, contextTokens: null })
    const main = at(sessions, "byAgent", 0)
    assert.strictEqual(at(main, "agentId"), "main")
    assert.strictEqual(at(main, "path"), "[redacted]")
    assert.deepStrictEqual(at(main, "recent"), [])
    // The counts and the CLI's agent roster stay: `openclaw status --json` reads them.
    assert.isAtLeast(Number(at(main, "count")), 1)
    assert.isAtLeast(Number(at(sessions, "count")), 1)
    assert.strictEqual(at(status, "payload", "cliProjection", "agents", "defaultId"), "main")
    await client.close()
  })
})

describe("expectedSessionId while the session is replaced", () => {
  it("sessions.delete naming the session that was read is refused once a queued /new has replaced it, and the new session stays", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    await send(client, "replaced-delete", "first", "run-replaced-delete")
    const read = await sessionIdOf(client, "replaced-delete")
    await replaceBehindARunningTurn(client, "agent:main:replaced-delete", "replaced-delete")
    const deleted = await client.request("sessions.delete", { key: "agent:main:replaced-delete", expectedSessionId: String(read) })
    assert.strictEqual(deleted.error?.code, "INVALID_REQUEST", JSON.stringify(deleted))
    assert.strictEqual(at(deleted.error, "details", "code"), "SESSION_CHANGED")
    const now = await sessionIdOf(client, "replaced-delete")
    assert.isString(now, "the session that replaced the one read is still there")
    assert.notStrictEqual(now, read)
    await client.close()
  })

  it("sessions.patch naming the session that was read is refused once a queued /new has replaced it", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    await send(client, "replaced-patch", "first", "run-replaced-patch")
    const read = await sessionIdOf(client, "replaced-patch")
    await replaceBehindARunningTurn(client, "agent:main:replaced-patch", "replaced-patch")
    const patched = await client.request("sessions.patch", { key: "agent:main:replaced-patch", label: "Stale", expectedSessionId: String(read) })
    assert.strictEqual(at(patched.error, "details", "code"), "SESSION_CHANGED", JSON.stringify(patched))
    const entry = at(await client.request("sessions.get", { key: "replaced-patch" }), "payload", "entry")
    assert.notStrictEqual(at(entry, "sessionId"), read)
    assert.isUndefined(at(entry, "label"))
    await client.close()
  })
})

describe("thinking levels by OpenClaw's names", () => {
  it("agent and chat.send take OpenClaw's aliases (max is high, on is low, think is minimal, x-high is xhigh); others are refused", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    const cases = [["max", thinkingBudgets.high], ["on", thinkingBudgets.low], ["think", thinkingBudgets.minimal], ["x-high", thinkingBudgets.xhigh]] as const
    for (const [alias, budget] of cases) {
      const before = env.fake.requests.length
      const runId = `thinking-${alias}`
      const answer = await client.request("agent", { message: `think ${alias}`, sessionKey: "aliases", thinking: alias, idempotencyKey: runId }, runId)
      assert.strictEqual(answer.ok, true, JSON.stringify(answer.error))
      await client.waitFor((frame) => frame.type === "res" && frame.id === runId && at(frame, "payload", "status") === "ok")
      assert.strictEqual(env.fake.requests[before]?.body?.thinking?.budget_tokens, budget, alias)
    }
    const before = env.fake.requests.length
    const chat = await client.request("chat.send", { sessionKey: "aliases", message: "chat think", thinking: "Ultra", idempotencyKey: "thinking-chat" })
    assert.strictEqual(chat.ok, true, JSON.stringify(chat.error))
    assert.strictEqual(at(await client.request("agent.wait", { runId: "thinking-chat", timeoutMs: 10_000 }), "payload", "status"), "ok")
    assert.strictEqual(env.fake.requests[before]?.body?.thinking?.budget_tokens, thinkingBudgets.high)
    for (const level of ["bogus", "adaptive"]) {
      const refused = await client.request("chat.send", { sessionKey: "aliases", message: "x", thinking: level, idempotencyKey: `thinking-${level}` })
      assert.match(refused.error?.message ?? "", /^invalid thinking level/, level)
    }
    await client.close()
  })
})

describe("method names every object has", () => {
  it("are unknown methods, answered whatever the scopes (not a missing admin scope, not left unanswered)", async () => {
    for (const scopes of [["operator.read"], ["operator.admin"]]) {
      const { client } = await connect(env.gateway.wsUrl, env.gateway.token, { scopes })
      for (const method of ["toString", "constructor", "__proto__", "hasOwnProperty"]) {
        const response = await client.request(method, {})
        assert.deepStrictEqual(response.error, { code: "INVALID_REQUEST", message: `unknown method: ${method}` }, `${method} with ${scopes.join(",")}`)
      }
      await client.close()
    }
  })
})
