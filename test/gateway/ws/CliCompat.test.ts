/**
 * What the real `openclaw` CLI (2026.9.6) sends and reads, over raw frames:
 * the shapes `openclaw health`, `status --json`, `models list`,
 * `sessions delete`, `agent --model/--thinking/--session-id` and
 * `gateway call sessions.patch` depend on, and the errors it shows for
 * OpenClaw methods this gateway does not have.
 */
import { assert, describe, it } from "@effect/vitest"
import { gatewayForFile } from "../../support/Gateway.ts"
import { at, connect, list } from "./WsClient.ts"

// A second model and an alias, so a run's own model can differ from the agent's.
const env = gatewayForFile({
  config: {
    agents: { defaults: { models: { "anthropic/claude-sonnet-5-5": {}, "anthropic/claude-other-1": { alias: "other" } } } }
  }
})

const send = async (client: Awaited<ReturnType<typeof connect>>["client"], sessionKey: string, runId: string) => {
  await client.request("chat.send", { sessionKey, message: `hello ${runId}`, idempotencyKey: runId })
  assert.strictEqual(at(await client.request("agent.wait", { runId, timeoutMs: 10_000 }), "payload", "status"), "ok")
}

describe("openclaw health and status", () => {
  it("health lists agents as OpenClaw's per-agent rows (agentId, isDefault, heartbeat, sessions)", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    await send(client, "health-row", "run-health")
    const health = await client.request("health")
    const agent = at(health, "payload", "agents", 0)
    assert.strictEqual(at(agent, "agentId"), "main")
    assert.strictEqual(at(agent, "isDefault"), true)
    assert.deepStrictEqual(at(agent, "heartbeat"), { enabled: false, every: "disabled", everyMs: null })
    assert.isAtLeast(Number(at(agent, "sessions", "count")), 1)
    assert.include(list(at(agent, "sessions", "recent")).map((row) => at(row, "key")), "agent:main:health-row")
    assert.deepStrictEqual(at(health, "payload", "sessions"), at(agent, "sessions"))
    await client.close()
  })

  it("status takes the CLI's params and carries OpenClaw's summary: sessions by agent, heartbeat, tasks, the CLI projection", async () => {
    // As admin: a client without it gets the summary without paths and recent rows (CliCompatEdges.test.ts).
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    const status = await client.request("status", { includeChannelSummary: false, includeCliProjection: true })
    assert.strictEqual(status.ok, true, JSON.stringify(status.error))
    const byAgent = list(at(status, "payload", "sessions", "byAgent"))
    assert.strictEqual(at(byAgent[0], "agentId"), "main")
    assert.isNumber(at(byAgent[0], "count"))
    assert.isArray(at(status, "payload", "sessions", "recent"))
    assert.deepStrictEqual(at(status, "payload", "sessions", "defaults"), { model: "claude-sonnet-5-5", contextTokens: 200_000 })
    assert.deepStrictEqual(at(status, "payload", "heartbeat", "agents", 0), { agentId: "main", enabled: false, every: "disabled", everyMs: null, waitingForRoute: false })
    assert.strictEqual(at(status, "payload", "tasks", "total"), 0)
    assert.deepStrictEqual(at(status, "payload", "cliProjection", "agents"), { defaultId: "main", ownership: "sole", selectionRequired: false, rows: [{ id: "main" }] })
    // BeamClaw's own numbers are still there.
    assert.isNumber(at(status, "payload", "uptimeMs"))
    assert.isNumber(at(status, "payload", "memory", "rss"))
    assert.isNumber(at(status, "payload", "sessions", "live"))
    const plain = await client.request("status", { includeChannelSummary: false })
    assert.isUndefined(at(plain, "payload", "cliProjection"))
    await client.close()
  })
})

describe("openclaw models list", () => {
  it("hello-ok advertises the published model catalogue, and models.list answers the CLI's params with tags", async () => {
    const { client, hello } = await connect(env.gateway.wsUrl, env.gateway.token, { scopes: ["operator.read"] })
    assert.include(list(at(hello, "payload", "features", "capabilities")), "published-model-catalog")
    const listed = await client.request("models.list", { view: "default", includeDetails: true })
    assert.strictEqual(listed.ok, true, JSON.stringify(listed.error))
    const rows = list(at(listed, "payload", "models"))
    const primary = rows.find((row) => at(row, "id") === "claude-sonnet-5-5")
    assert.deepStrictEqual(at(primary, "tags"), ["default", "configured"])
    // The fake upstream is on loopback.
    assert.strictEqual(at(primary, "local"), true)
    const other = rows.find((row) => at(row, "id") === "claude-other-1")
    assert.strictEqual(at(other, "alias"), "other")
    assert.deepStrictEqual(at(other, "tags"), ["configured"])
    const none = await client.request("models.list", { view: "all", provider: "openai", includeDetails: true })
    assert.deepStrictEqual(at(none, "payload", "models"), [])
    const unknown = await client.request("models.list", { agentId: "nobody" })
    assert.strictEqual(unknown.error?.message, "unknown agent id \"nobody\"")
    await client.close()
  })
})

describe("openclaw sessions delete / archive", () => {
  it("sessions.list takes the CLI's lookup params, pages with offset / hasMore / nextOffset and marks the main session", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    await send(client, "main", "run-main")
    await send(client, "page-a", "run-page-a")
    await send(client, "page-b", "run-page-b")
    const lookup = { archived: "all", includeGlobal: true, includeUnknown: true, configuredAgentsOnly: true }
    const first = await client.request("sessions.list", { limit: 2, ...lookup })
    assert.strictEqual(first.ok, true, JSON.stringify(first.error))
    assert.strictEqual(list(at(first, "payload", "sessions")).length, 2)
    assert.strictEqual(at(first, "payload", "hasMore"), true)
    const next = Number(at(first, "payload", "nextOffset"))
    assert.strictEqual(next, 2)
    const rest = await client.request("sessions.list", { limit: 200, offset: next, ...lookup })
    const keys = [...list(at(first, "payload", "sessions")), ...list(at(rest, "payload", "sessions"))].map((row) => at(row, "key"))
    for (const key of ["agent:main:main", "agent:main:page-a", "agent:main:page-b"]) assert.include(keys, key)
    assert.strictEqual(at(rest, "payload", "hasMore"), false)
    const rows = [...list(at(first, "payload", "sessions")), ...list(at(rest, "payload", "sessions"))]
    assert.strictEqual(at(rows.find((row) => at(row, "key") === "agent:main:main"), "isMain"), true)
    assert.strictEqual(at(rows.find((row) => at(row, "key") === "agent:main:page-a"), "isMain"), false)
    // Nothing is archived in BeamClaw.
    assert.deepStrictEqual(at(await client.request("sessions.list", { archived: true }), "payload", "sessions"), [])
    await client.close()
  })

  it("sessions.delete takes agentId and expectedSessionId, and refuses a session that changed since it was read", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    await send(client, "doomed", "run-doomed")
    const got = await client.request("sessions.get", { key: "doomed" })
    const sessionId = String(at(got, "payload", "entry", "sessionId"))
    const stale = await client.request("sessions.delete", { key: "agent:main:doomed", agentId: "main", expectedSessionId: "not-this-one", deleteTranscript: true })
    assert.strictEqual(stale.error?.code, "INVALID_REQUEST")
    assert.match(stale.error?.message ?? "", /^Session changed/)
    const archivedOnly = await client.request("sessions.delete", { key: "agent:main:doomed", archivedOnly: true })
    assert.match(archivedOnly.error?.message ?? "", /is not archived/)
    const deleted = await client.request("sessions.delete", { key: "agent:main:doomed", agentId: "main", expectedSessionId: sessionId, deleteTranscript: true })
    assert.deepStrictEqual(deleted.payload, { ok: true, key: "agent:main:doomed", deleted: true })
    await client.close()
  })

  it("sessions.patch of label, model or thinking level needs only operator.write; other fields need admin; archived is refused by name", async () => {
    const admin = await connect(env.gateway.wsUrl, env.gateway.token)
    await send(admin.client, "patchable", "run-patchable")
    await admin.client.close()
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token, { scopes: ["operator.write"] })
    const got = await client.request("sessions.get", { key: "patchable" })
    const sessionId = String(at(got, "payload", "entry", "sessionId"))
    const labelled = await client.request("sessions.patch", { key: "patchable", label: "Renamed", expectedSessionId: sessionId })
    assert.strictEqual(labelled.ok, true, JSON.stringify(labelled.error))
    assert.strictEqual(at(labelled, "payload", "entry", "label"), "Renamed")
    const stale = await client.request("sessions.patch", { key: "patchable", label: "Again", expectedSessionId: "not-this-one" })
    assert.match(stale.error?.message ?? "", /^Session changed/)
    const elevated = await client.request("sessions.patch", { key: "patchable", verboseLevel: "on" })
    assert.deepStrictEqual(elevated.error, {
      code: "FORBIDDEN",
      message: "missing scope: operator.admin",
      details: { code: "MISSING_SCOPE", missingScope: "operator.admin", requiredScopes: ["operator.admin"] }
    })
    const archived = await client.request("sessions.patch", { key: "patchable", expectedSessionId: sessionId, archived: true })
    assert.strictEqual(at(archived.error, "details", "code"), "UNSUPPORTED_FIELDS")
    assert.deepStrictEqual(at(archived.error, "details", "fields"), ["archived"])
    await client.close()
  })
})

describe("openclaw agent", () => {
  it("--model runs that turn on the model asked for (admin only), --thinking sets the turn's thinking level", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    const before = env.fake.requests.length
    await client.request("agent", { message: "which model?", agentId: "main", model: "other", thinking: "low", idempotencyKey: "agent-model" }, "agent-model")
    const final = await client.waitFor((frame) => frame.type === "res" && frame.id === "agent-model" && at(frame, "payload", "status") === "ok")
    assert.strictEqual(at(final, "payload", "result", "meta", "agentMeta", "model"), "claude-other-1")
    const sent = env.fake.requests.slice(before).map((request) => request.body)
    assert.strictEqual(sent[0]?.model, "claude-other-1")
    assert.strictEqual(sent[0]?.thinking?.type, "enabled")
    // The session keeps its own model: the next turn without an override is back on the agent's.
    const next = env.fake.requests.length
    await client.request("agent", { message: "and now?", agentId: "main", idempotencyKey: "agent-model-2" }, "agent-model-2")
    await client.waitFor((frame) => frame.type === "res" && frame.id === "agent-model-2" && at(frame, "payload", "status") === "ok")
    assert.strictEqual(env.fake.requests[next]?.body?.model, "claude-sonnet-5-5")
    assert.isUndefined(env.fake.requests[next]?.body?.thinking)
    // Not a level nor one of OpenClaw's names for one ("ultra" is high there: CliCompatEdges.test.ts).
    const bad = await client.request("agent", { message: "x", thinking: "bogus", idempotencyKey: "agent-bad-thinking" })
    assert.strictEqual(bad.error?.message, "invalid thinking level: \"bogus\" (use off, minimal, low, medium, high, xhigh)")
    await client.close()

    const writer = await connect(env.gateway.wsUrl, env.gateway.token, { scopes: ["operator.write"] })
    const refused = await writer.client.request("agent", { message: "x", model: "anthropic/claude-other-1", idempotencyKey: "agent-model-writer" })
    assert.strictEqual(refused.error?.message, "provider/model overrides are not authorized for this caller.")
    await writer.client.close()
  })

  it("--session-id without a session key continues the session with that id, or one of its own", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    await client.request("agent", { message: "first", sessionId: "cli-session-1", idempotencyKey: "agent-sid-1" }, "agent-sid-1")
    const first = await client.waitFor((frame) => frame.type === "res" && frame.id === "agent-sid-1" && at(frame, "payload", "status") === "ok")
    await client.request("agent", { message: "second", sessionId: "cli-session-1", idempotencyKey: "agent-sid-2" }, "agent-sid-2")
    const second = await client.waitFor((frame) => frame.type === "res" && frame.id === "agent-sid-2" && at(frame, "payload", "status") === "ok")
    const sessionId = at(first, "payload", "result", "meta", "agentMeta", "sessionId")
    assert.strictEqual(at(second, "payload", "result", "meta", "agentMeta", "sessionId"), sessionId)
    const history = await client.request("chat.history", { sessionKey: "agent:main:explicit:cli-session-1" })
    assert.strictEqual(list(at(history, "payload", "messages")).length, 4)
    // A session's real id reaches that session.
    await client.request("agent", { message: "third", sessionId: String(sessionId), idempotencyKey: "agent-sid-3" }, "agent-sid-3")
    await client.waitFor((frame) => frame.type === "res" && frame.id === "agent-sid-3" && at(frame, "payload", "status") === "ok")
    assert.strictEqual(list(at(await client.request("chat.history", { sessionKey: "agent:main:explicit:cli-session-1" }), "payload", "messages")).length, 6)
    await client.close()
  })
})

describe("methods OpenClaw has and BeamClaw does not", () => {
  it("are named as unknown whatever the caller's scopes (openclaw cron list, system event), not reported as a missing admin scope", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token, { scopes: ["operator.write"] })
    for (const method of ["cron.list", "wake", "usage.cost"]) {
      const response = await client.request(method, {})
      assert.deepStrictEqual(response.error, { code: "INVALID_REQUEST", message: `unknown method: ${method}` })
    }
    // A method it has still needs its scope.
    assert.strictEqual((await client.request("config.patch", { raw: "{}" })).error?.message, "missing scope: operator.admin")
    await client.close()
  })
})
