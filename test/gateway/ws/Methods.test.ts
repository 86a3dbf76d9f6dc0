/**
 * The method catalogue over a real gateway: chat (events, history, abort,
 * runs that outlive their client), agent + agent.wait, sessions.*,
 * config.get/patch/apply with the base-hash guard, and the system methods.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { gatewayForFile } from "../../support/Gateway.ts"
import { at, connect, list } from "./WsClient.ts"

const env = gatewayForFile()

const historyTexts = (frame: unknown) => list(at(frame, "payload", "messages")).map((message) => `${String(at(message, "role"))}: ${String(at(message, "content", 0, "text"))}`)

describe("chat", () => {
  it("chat.send acks at once with the runId, streams agent and chat events, and chat.history shows the answer", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    const ack = await client.request("chat.send", { sessionKey: "chat-basic", message: "hello gateway", idempotencyKey: "run-basic" })
    assert.deepStrictEqual(ack.payload, { runId: "run-basic", status: "started" })
    const final = await client.waitFor((frame) => frame.event === "chat" && at(frame, "payload", "state") === "final")
    assert.strictEqual(at(final, "payload", "runId"), "run-basic")
    assert.strictEqual(at(final, "payload", "sessionKey"), "agent:main:chat-basic")
    assert.strictEqual(at(final, "payload", "message", "role"), "assistant")
    assert.strictEqual(at(final, "payload", "message", "content", 0, "text"), "echo: hello gateway")
    const deltas = client.frames.filter((frame) => frame.event === "chat" && at(frame, "payload", "state") === "delta")
    assert.isAbove(deltas.length, 0)
    const agentStreams = client.frames.filter((frame) => frame.event === "agent").map((frame) => `${String(at(frame, "payload", "stream"))}:${String(at(frame, "payload", "data", "phase") ?? "")}`)
    assert.strictEqual(agentStreams[0], "lifecycle:start")
    assert.include(agentStreams, "assistant:")
    assert.strictEqual(agentStreams.at(-1), "lifecycle:end")
    // Per-connection seq increases by one for each broadcast.
    const seqs = client.frames.filter((frame) => frame.type === "event" && frame.seq !== undefined).map((frame) => frame.seq ?? 0)
    seqs.forEach((seq, index) => index > 0 && assert.strictEqual(seq, (seqs[index - 1] ?? 0) + 1))

    const history = await client.request("chat.history", { sessionKey: "chat-basic" })
    assert.deepStrictEqual(historyTexts(history), ["user: hello gateway", "assistant: echo: hello gateway"])
    assert.strictEqual(at(history, "payload", "sessionKey"), "agent:main:chat-basic")
    assert.isString(at(history, "payload", "sessionId"))
    // The same idempotency key does not start a second run.
    const again = await client.request("chat.send", { sessionKey: "chat-basic", message: "hello gateway", idempotencyKey: "run-basic" })
    assert.strictEqual(at(again, "payload", "runId"), "run-basic")
    await client.close()
  })

  it("a run keeps going after its client disconnects", async () => {
    env.fake.push({ kind: "message", content: [{ type: "text", text: "slow answer arrives later" }], delayMs: 40 })
    const first = await connect(env.gateway.wsUrl, env.gateway.token)
    const ack = await first.client.request("chat.send", { sessionKey: "chat-leaver", message: "take your time", idempotencyKey: "run-leaver" })
    assert.strictEqual(at(ack, "payload", "status"), "started")
    await first.client.close()
    const second = await connect(env.gateway.wsUrl, env.gateway.token)
    const wait = await second.client.request("agent.wait", { runId: "run-leaver", timeoutMs: 10_000 })
    assert.strictEqual(at(wait, "payload", "status"), "ok")
    const history = await second.client.request("chat.history", { sessionKey: "chat-leaver" })
    assert.deepStrictEqual(historyTexts(history), ["user: take your time", "assistant: slow answer arrives later"])
    await second.client.close()
  })

  it("chat.abort stops a running turn and the run ends as aborted", async () => {
    env.fake.push({ kind: "hang" })
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    await client.request("chat.send", { sessionKey: "chat-abort", message: "never mind", idempotencyKey: "run-abort" })
    // Abort once the model call is in flight, so the scripted reply is the one this turn used.
    const before = env.fake.requests.length
    await client.waitFor((frame) => frame.event === "agent" && at(frame, "payload", "runId") === "run-abort" && at(frame, "payload", "data", "phase") === "start")
    for (let i = 0; i < 200 && env.fake.requests.length === before; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    const mismatch = await client.request("chat.abort", { sessionKey: "other", runId: "run-abort" })
    assert.strictEqual(mismatch.error?.message, "runId does not match sessionKey")
    const abort = await client.request("chat.abort", { sessionKey: "chat-abort" })
    assert.deepStrictEqual(abort.payload, { ok: true, aborted: true, runIds: ["run-abort"] })
    const ended = await client.waitFor((frame) => frame.event === "chat" && at(frame, "payload", "runId") === "run-abort" && at(frame, "payload", "state") !== "delta")
    assert.strictEqual(at(ended, "payload", "state"), "aborted")
    const nothing = await client.request("chat.abort", { sessionKey: "chat-abort" })
    assert.deepStrictEqual(nothing.payload, { ok: true, aborted: false, runIds: [] })
    await client.close()
  })

  it("refuses empty and NUL-carrying messages and bad session keys", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    assert.strictEqual((await client.request("chat.send", { sessionKey: "main", message: "  ", idempotencyKey: "e1" })).error?.message, "message or attachment required")
    assert.strictEqual((await client.request("chat.send", { sessionKey: "main", message: "a\u0000b", idempotencyKey: "e2" })).error?.message, "message must not contain null bytes")
    assert.strictEqual((await client.request("chat.send", { sessionKey: "main", message: "hi" })).error?.code, "INVALID_REQUEST")
    const badKey = await client.request("chat.history", { sessionKey: "agent:main:Bad Key!" })
    assert.strictEqual(badKey.error?.code, "INVALID_REQUEST")
    assert.match(badKey.error?.message ?? "", /invalid session key/)
    await client.close()
  })

  it("a failing model call ends the run with a chat error and an error lifecycle", async () => {
    env.fake.push({ kind: "error", status: 400, type: "invalid_request_error", message: "prompt is broken" })
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    await client.request("chat.send", { sessionKey: "chat-fail", message: "break", idempotencyKey: "run-fail" })
    const failed = await client.waitFor((frame) => frame.event === "chat" && at(frame, "payload", "runId") === "run-fail" && at(frame, "payload", "state") === "error")
    assert.match(String(at(failed, "payload", "errorMessage")), /prompt is broken/)
    const wait = await client.request("agent.wait", { runId: "run-fail" })
    assert.strictEqual(at(wait, "payload", "status"), "error")
    await client.close()
  })
})

describe("session-scoped events", () => {
  it("a client with caps session-scoped-events gets agent and chat events only for sessions it subscribed to; others get every run", async () => {
    const scoped = (await connect(env.gateway.wsUrl, env.gateway.token, { caps: ["session-scoped-events"] })).client
    const everyone = (await connect(env.gateway.wsUrl, env.gateway.token)).client
    const sub = await scoped.request("sessions.messages.subscribe", { key: "scoped-mine" })
    assert.deepStrictEqual(sub.payload, { subscribed: true, key: "agent:main:scoped-mine" })

    await everyone.request("chat.send", { sessionKey: "scoped-other", message: "not yours", idempotencyKey: "run-scoped-other" })
    await everyone.waitFor((frame) => frame.event === "chat" && at(frame, "payload", "runId") === "run-scoped-other" && at(frame, "payload", "state") === "final")
    await everyone.request("chat.send", { sessionKey: "scoped-mine", message: "yours", idempotencyKey: "run-scoped-mine" })
    const final = await scoped.waitFor((frame) => frame.event === "chat" && at(frame, "payload", "state") === "final")
    assert.strictEqual(at(final, "payload", "runId"), "run-scoped-mine")
    assert.strictEqual(at(final, "payload", "message", "content", 0, "text"), "echo: yours")
    const runIds = new Set(scoped.frames.filter((frame) => frame.event === "agent" || frame.event === "chat").map((frame) => at(frame, "payload", "runId")))
    assert.deepStrictEqual([...runIds], ["run-scoped-mine"])
    assert.isTrue(scoped.frames.some((frame) => frame.event === "agent" && at(frame, "payload", "stream") === "assistant"))
    // Skipped events do not use up seq numbers: the scoped client's seq stays contiguous.
    const seqs = scoped.frames.filter((frame) => frame.type === "event" && frame.seq !== undefined).map((frame) => frame.seq ?? 0)
    seqs.forEach((seq, index) => index > 0 && assert.strictEqual(seq, (seqs[index - 1] ?? 0) + 1))
    // The unscoped client saw both runs.
    await everyone.waitFor((frame) => frame.event === "chat" && at(frame, "payload", "runId") === "run-scoped-mine" && at(frame, "payload", "state") === "final")
    const seen = new Set(everyone.frames.filter((frame) => frame.event === "chat").map((frame) => at(frame, "payload", "runId")))
    assert.isTrue(seen.has("run-scoped-other") && seen.has("run-scoped-mine"))

    // After unsubscribing, the next run on that session is not delivered.
    const unsub = await scoped.request("sessions.messages.unsubscribe", { key: "agent:main:scoped-mine" })
    assert.deepStrictEqual(unsub.payload, { subscribed: false, key: "agent:main:scoped-mine" })
    const before = scoped.frames.length
    await everyone.request("chat.send", { sessionKey: "scoped-mine", message: "after", idempotencyKey: "run-scoped-after" })
    await everyone.waitFor((frame) => frame.event === "chat" && at(frame, "payload", "runId") === "run-scoped-after" && at(frame, "payload", "state") === "final")
    const health = await scoped.request("health", {})
    assert.isTrue(health.ok)
    assert.isFalse(scoped.frames.slice(before).some((frame) => at(frame, "payload", "runId") === "run-scoped-after"))
    await scoped.close()
    await everyone.close()
  })

  it("refuses bad subscribe params by name: missing key, unknown agent, approvals", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token, { caps: ["session-scoped-events"] })
    const missing = await client.request("sessions.messages.subscribe", {})
    assert.isFalse(missing.ok)
    assert.include(String(at(missing, "error", "message")), "key")
    const agent = await client.request("sessions.messages.subscribe", { key: "x", agentId: "nobody" })
    assert.strictEqual(at(agent, "error", "code"), "INVALID_REQUEST")
    assert.include(String(at(agent, "error", "message")), "nobody")
    const approvals = await client.request("sessions.messages.subscribe", { key: "x", includeApprovals: true })
    assert.include(String(at(approvals, "error", "message")), "includeApprovals")
    const extra = await client.request("sessions.messages.unsubscribe", { key: "x", bogus: 1 })
    assert.include(String(at(extra, "error", "message")), "bogus")
    await client.close()
  })
})

describe("agent", () => {
  it("answers twice on one request id: accepted, then the final result; agent.wait reports it", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    client.sendRaw(JSON.stringify({ type: "req", id: "agent-1", method: "agent", params: { message: "run as agent", sessionKey: "agent-test", idempotencyKey: "run-agent" } }))
    await client.waitFor((frame) => frame.type === "res" && frame.id === "agent-1" && at(frame, "payload", "status") === "ok")
    const [accepted, final] = client.responses("agent-1")
    assert.strictEqual(at(accepted, "payload", "status"), "accepted")
    assert.strictEqual(at(accepted, "payload", "runId"), "run-agent")
    assert.strictEqual(at(final, "payload", "summary"), "completed")
    assert.strictEqual(at(final, "payload", "result", "payloads", 0, "text"), "echo: run as agent")
    assert.strictEqual(at(final, "payload", "result", "meta", "agentMeta", "provider"), "anthropic")
    const wait = await client.request("agent.wait", { runId: "run-agent" })
    assert.strictEqual(at(wait, "payload", "status"), "ok")
    assert.isNumber(at(wait, "payload", "endedAt"))
    const otherSession = await client.request("agent", { message: "run as agent", sessionKey: "another-session", idempotencyKey: "run-agent" })
    assert.strictEqual(otherSession.error?.message, "idempotencyKey already used for another session", "a run of another session is not that run")
    const unknown = await client.request("agent.wait", { runId: "never-started", timeoutMs: 50 })
    assert.deepStrictEqual(unknown.payload, { runId: "never-started", status: "timeout" })
    const noTarget = await client.request("agent", { message: "x", deliver: true, idempotencyKey: "run-deliver" })
    assert.match(noTarget.error?.message ?? "", /deliver needs `to`/)
    const deliver = await client.request("agent", { message: "x", deliver: true, to: "user:123", idempotencyKey: "run-deliver-2" })
    assert.match(deliver.error?.message ?? "", /no channel is configured/)
    await client.close()
  })

  it("send answers that no channel is configured", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    const response = await client.request("send", { to: "+15550100", message: "hi", idempotencyKey: "send-1" })
    assert.strictEqual(response.error?.code, "UNAVAILABLE")
    assert.match(response.error?.message ?? "", /no channel is configured/)
    await client.close()
  })
})

describe("sessions", () => {
  it("list, get, preview and reset", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    await client.request("chat.send", { sessionKey: "sess-a", message: "first words", idempotencyKey: "run-sess-a" })
    await client.request("agent.wait", { runId: "run-sess-a" })
    const listed = await client.request("sessions.list", { limit: 50 })
    const row = list(at(listed, "payload", "sessions")).find((session) => at(session, "key") === "agent:main:sess-a")
    assert.isDefined(row)
    assert.strictEqual(at(row, "kind"), "direct")
    assert.isString(at(row, "sessionId"))
    assert.strictEqual(at(listed, "payload", "defaults", "modelProvider"), "anthropic")
    assert.strictEqual(at(listed, "payload", "path"), path.join(env.gateway.home, "agents", "main", "sessions", "sessions.json"))
    assert.strictEqual((await client.request("sessions.list", { agentId: "nobody" })).error?.code, "INVALID_REQUEST")

    const got = await client.request("sessions.get", { key: "sess-a" })
    assert.strictEqual(at(got, "payload", "key"), "agent:main:sess-a")
    assert.strictEqual(at(got, "payload", "entry", "sessionId"), at(row, "sessionId"))
    assert.match((await client.request("sessions.get", { key: "no-such-session" })).error?.message ?? "", /session not found/)

    const preview = await client.request("sessions.preview", { keys: ["sess-a", "no-such-session"] })
    const [a, missing] = list(at(preview, "payload", "previews"))
    assert.strictEqual(at(a, "status"), "ok")
    assert.deepStrictEqual(at(a, "items"), [{ role: "user", text: "first words" }, { role: "assistant", text: "echo: first words" }])
    assert.strictEqual(at(missing, "status"), "missing")

    const reset = await client.request("sessions.reset", { key: "sess-a" })
    assert.strictEqual(at(reset, "payload", "ok"), true)
    assert.notStrictEqual(at(reset, "payload", "entry", "sessionId"), at(row, "sessionId"))
    assert.isTrue(client.frames.some((frame) => frame.event === "sessions.changed" && at(frame, "payload", "sessionKey") === "agent:main:sess-a"))
    const after = await client.request("chat.history", { sessionKey: "sess-a" })
    assert.deepStrictEqual(list(at(after, "payload", "messages")), [])
    await client.close()
  })

  it("sessions.patch sets and clears label, thinkingLevel and model; the next turn uses the model and thinking", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    const patched = await client.request("sessions.patch", { key: "sess-patch", label: "  Groceries  ", thinkingLevel: "low", model: "anthropic/claude-override-1" })
    assert.strictEqual(patched.ok, true, JSON.stringify(patched.error))
    assert.strictEqual(at(patched, "payload", "key"), "agent:main:sess-patch")
    assert.strictEqual(at(patched, "payload", "entry", "label"), "Groceries")
    assert.strictEqual(at(patched, "payload", "entry", "thinkingLevel"), "low")
    assert.strictEqual(at(patched, "payload", "entry", "modelOverride"), "anthropic/claude-override-1")
    assert.deepStrictEqual(at(patched, "payload", "resolved"), { modelProvider: "anthropic", model: "claude-override-1" })
    assert.strictEqual(at(patched, "payload", "path"), path.join(env.gateway.home, "agents", "main", "sessions", "sessions.json"))
    const changed = await client.waitFor((frame) => frame.event === "sessions.changed" && at(frame, "payload", "reason") === "patch")
    assert.deepStrictEqual(changed.payload, { sessionKey: "agent:main:sess-patch", reason: "patch", agentId: "main" })

    const before = env.fake.requests.length
    await client.request("chat.send", { sessionKey: "sess-patch", message: "which model?", idempotencyKey: "run-patch" })
    assert.strictEqual(at(await client.request("agent.wait", { runId: "run-patch" }), "payload", "status"), "ok")
    const sent = env.fake.requests.slice(before).map((request) => request.body)
    assert.strictEqual(sent[0]?.model, "claude-override-1")
    assert.strictEqual(sent[0]?.thinking?.type, "enabled")

    const listed = await client.request("sessions.list", { label: "Groceries" })
    assert.deepStrictEqual(list(at(listed, "payload", "sessions")).map((row) => at(row, "key")), ["agent:main:sess-patch"])
    // Another session cannot take the same label.
    assert.strictEqual((await client.request("sessions.patch", { key: "sess-other", label: "Groceries" })).error?.message, "label already in use: Groceries")

    const cleared = await client.request("sessions.patch", { key: "sess-patch", label: null, thinkingLevel: null, model: null, verboseLevel: null })
    assert.strictEqual(cleared.ok, true, JSON.stringify(cleared.error))
    assert.strictEqual(at(cleared, "payload", "entry", "label"), undefined)
    assert.strictEqual(at(cleared, "payload", "entry", "thinkingLevel"), undefined)
    assert.strictEqual(at(cleared, "payload", "entry", "modelOverride"), undefined)
    assert.strictEqual(at(cleared, "payload", "resolved", "modelProvider"), "anthropic")
    await client.close()
  })

  it("sessions.patch refuses unsupported fields by name, bad values and bad models", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    const unsupported = await client.request("sessions.patch", { key: "sess-bad", label: "ok", verboseLevel: "on", sendPolicy: "deny" })
    assert.strictEqual(unsupported.error?.code, "INVALID_REQUEST")
    assert.strictEqual(unsupported.error?.message, "sessions.patch: verboseLevel, sendPolicy are not supported by BeamClaw sessions (supported: label, thinkingLevel, model)")
    assert.deepStrictEqual(unsupported.error?.details, { code: "UNSUPPORTED_FIELDS", fields: ["verboseLevel", "sendPolicy"] })
    assert.match((await client.request("sessions.patch", { key: "sess-bad", nonsense: 1 })).error?.message ?? "", /^invalid sessions\.patch params/)
    assert.match((await client.request("sessions.patch", { key: "sess-bad", thinkingLevel: "extreme" })).error?.message ?? "", /^invalid sessions\.patch params/)
    assert.match((await client.request("sessions.patch", { key: "sess-bad", label: "x".repeat(101) })).error?.message ?? "", /^invalid sessions\.patch params/)
    assert.strictEqual((await client.request("sessions.patch", { key: "sess-bad", label: "   " })).error?.message, "invalid label: empty (send null to clear it)")
    assert.match((await client.request("sessions.patch", { key: "sess-bad", model: "no-provider" })).error?.message ?? "", /^invalid model: "no-provider"/)
    assert.match((await client.request("sessions.patch", { key: "sess-bad", model: 7 })).error?.message ?? "", /^invalid sessions\.patch params/)
    assert.match((await client.request("sessions.patch", {})).error?.message ?? "", /^invalid sessions\.patch params/)
    // Nothing was written by the refused patches.
    assert.match((await client.request("sessions.get", { key: "sess-bad" })).error?.message ?? "", /session not found/)
    await client.close()
  })

  it("chat.inject appends an assistant note without a run, shows it as a chat final, and dedupes by idempotencyKey", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    const before = env.fake.requests.length
    const injected = await client.request("chat.inject", { sessionKey: "sess-inject", message: "remember the milk", label: "note", idempotencyKey: "inject-1" })
    assert.strictEqual(injected.ok, true, JSON.stringify(injected.error))
    assert.strictEqual(at(injected, "payload", "ok"), true)
    const messageId = at(injected, "payload", "messageId")
    assert.isString(messageId)
    const final = await client.waitFor((frame) => frame.event === "chat" && at(frame, "payload", "runId") === `inject-${String(messageId)}`)
    assert.strictEqual(at(final, "payload", "state"), "final")
    assert.strictEqual(at(final, "payload", "sessionKey"), "agent:main:sess-inject")
    assert.strictEqual(at(final, "payload", "message", "content", 0, "text"), "[note] remember the milk")
    const again = await client.request("chat.inject", { sessionKey: "sess-inject", message: "remember the milk", label: "note", idempotencyKey: "inject-1" })
    assert.strictEqual(at(again, "payload", "messageId"), messageId)
    assert.strictEqual((await client.request("chat.inject", { sessionKey: "sess-elsewhere", message: "x", idempotencyKey: "inject-1" })).error?.message, "idempotencyKey already used for another session")
    const history = await client.request("chat.history", { sessionKey: "sess-inject" })
    assert.deepStrictEqual(historyTexts(history), ["assistant: [note] remember the milk"])
    assert.strictEqual(env.fake.requests.length, before, "inject must not call the model")

    assert.strictEqual((await client.request("chat.inject", { sessionKey: "sess-inject", message: "  " })).error?.message, "message required")
    assert.strictEqual((await client.request("chat.inject", { sessionKey: "sess-inject", message: "a\u0000b" })).error?.message, "message must not contain null bytes")
    assert.match((await client.request("chat.inject", { sessionKey: "sess-inject", message: "x", label: "l".repeat(101) })).error?.message ?? "", /^invalid chat\.inject params/)
    assert.match((await client.request("chat.inject", { sessionKey: "sess-inject" })).error?.message ?? "", /^invalid chat\.inject params/)
    await client.close()
  })

  it("sessions.delete aborts a running turn, archives the transcript and forgets the session; main cannot be deleted", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    assert.strictEqual((await client.request("sessions.delete", { key: "main" })).error?.message, "Cannot delete the main session (agent:main:main).")
    assert.match((await client.request("sessions.delete", { key: "sess-del", deleteTranscript: false })).error?.message ?? "", /deleteTranscript false is not supported/)
    assert.match((await client.request("sessions.delete", {})).error?.message ?? "", /^invalid sessions\.delete params/)

    env.fake.push({ kind: "hang" })
    await client.request("chat.send", { sessionKey: "sess-del", message: "long job", idempotencyKey: "run-del" })
    await client.waitFor((frame) => frame.event === "agent" && at(frame, "payload", "runId") === "run-del" && at(frame, "payload", "data", "phase") === "start")
    const deleted = await client.request("sessions.delete", { key: "sess-del" })
    assert.deepStrictEqual(deleted.payload, { ok: true, key: "agent:main:sess-del", deleted: true })
    assert.strictEqual(at(await client.request("agent.wait", { runId: "run-del", timeoutMs: 5000 }), "payload", "status"), "error")
    assert.isTrue(client.frames.some((frame) => frame.event === "sessions.changed" && at(frame, "payload", "reason") === "delete" && at(frame, "payload", "sessionKey") === "agent:main:sess-del"))
    assert.match((await client.request("sessions.get", { key: "sess-del" })).error?.message ?? "", /session not found/)
    const dir = path.join(env.gateway.home, "agents", "main", "sessions")
    const archived = (await fs.readdir(dir)).filter((file) => file.includes(".jsonl.deleted."))
    assert.strictEqual(archived.length, 1, archived.join(", "))
    assert.include(await fs.readFile(path.join(dir, archived[0] ?? ""), "utf8"), "long job")
    assert.isFalse((await fs.readdir(dir)).includes((archived[0] ?? "").replace(/\.deleted\..*$/, "")))
    // Deleting again finds nothing.
    assert.deepStrictEqual((await client.request("sessions.delete", { key: "sess-del" })).payload, { ok: true, key: "agent:main:sess-del", deleted: false })
    await client.close()
  })
})

describe("config", () => {
  it("config.get returns the redacted config and the file hash; patch needs that hash and hot-applies", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    const file = path.join(env.gateway.home, "beamclaw.yaml")
    const got = await client.request("config.get")
    assert.strictEqual(at(got, "payload", "path"), file)
    assert.strictEqual(at(got, "payload", "exists"), true)
    assert.strictEqual(at(got, "payload", "valid"), true)
    assert.strictEqual(at(got, "payload", "config", "models", "providers", "anthropic", "apiKey"), "<redacted>")
    const hash = String(at(got, "payload", "hash"))
    assert.match(hash, /^[0-9a-f]{64}$/)

    const raw = JSON.stringify({ agents: { defaults: { timeoutSeconds: 321 } } })
    assert.strictEqual((await client.request("config.patch", { raw })).error?.message, "config base hash required; re-run config.get and retry")
    assert.strictEqual((await client.request("config.patch", { raw, baseHash: "0".repeat(64) })).error?.message, "config changed since last load; re-run config.get and retry")
    assert.strictEqual((await client.request("config.patch", { raw: "[1, 2]", baseHash: hash })).error?.message, "config.patch raw must be an object")
    assert.match((await client.request("config.patch", { raw: "{\"a\": ", baseHash: hash })).error?.message ?? "", /^config\.patch raw is not valid JSON: /)
    const invalid = await client.request("config.patch", { raw: JSON.stringify({ agents: { defaults: { timeoutSeconds: "soon" } } }), baseHash: hash })
    assert.match(invalid.error?.message ?? "", /^invalid config: agents\.defaults\.timeoutSeconds/)

    const patched = await client.request("config.patch", { raw, baseHash: hash })
    assert.strictEqual(at(patched, "payload", "ok"), true)
    assert.deepStrictEqual(at(patched, "payload", "changedPaths"), ["agents.defaults.timeoutSeconds"])
    const onDisk = await fs.readFile(file, "utf8")
    assert.include(onDisk, "timeoutSeconds: 321")
    // The secret survived the round trip through the file.
    assert.include(onDisk, "apiKey: sk-test")
    const reread = await client.request("config.get")
    assert.strictEqual(at(reread, "payload", "config", "agents", "defaults", "timeoutSeconds"), 321)
    assert.notStrictEqual(at(reread, "payload", "hash"), hash)
    // The old hash is stale now.
    assert.match((await client.request("config.patch", { raw, baseHash: hash })).error?.message ?? "", /config changed since last load/)

    // apply replaces the whole file; `<redacted>` keeps the secret it stands for.
    const whole = at(reread, "payload", "config")
    const applied = await client.request("config.apply", { raw: JSON.stringify({ models: at(whole, "models"), logging: { level: "debug" } }), baseHash: at(reread, "payload", "hash") })
    assert.strictEqual(at(applied, "payload", "ok"), true)
    const applyDisk = await fs.readFile(file, "utf8")
    assert.include(applyDisk, "apiKey: sk-test")
    assert.notInclude(applyDisk, "timeoutSeconds")
    // The gateway is still the same process and still answers turns.
    const health = await client.request("health")
    assert.strictEqual(at(health, "payload", "ok"), true)
    await client.close()
  })
})

describe("config secrets", () => {
  it("provider headers are secrets: config.get redacts them, and the model call still sends them", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    const got = await client.request("config.get")
    const patched = await client.request("config.patch", { raw: JSON.stringify({ models: { providers: { anthropic: { headers: { "x-team-secret": "hdr-secret" } } } } }), baseHash: at(got, "payload", "hash") })
    assert.strictEqual(at(patched, "payload", "ok"), true)
    const reread = await client.request("config.get")
    assert.strictEqual(at(reread, "payload", "config", "models", "providers", "anthropic", "headers", "x-team-secret"), "<redacted>")
    assert.notInclude(JSON.stringify(reread), "hdr-secret")
    await client.request("chat.send", { sessionKey: "secret-headers", message: "hi", idempotencyKey: "run-secret-headers" })
    await client.waitFor((frame) => frame.event === "chat" && at(frame, "payload", "runId") === "run-secret-headers" && at(frame, "payload", "state") === "final")
    assert.strictEqual(env.fake.requests.at(-1)?.headers["x-team-secret"], "hdr-secret")
    await client.close()
  })
})

describe("system", () => {
  it("status, models.list, agents.list, channels.status, system-presence, last-heartbeat, logs.tail", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    const status = await client.request("status")
    assert.isNumber(at(status, "payload", "uptimeMs"))
    assert.isNumber(at(status, "payload", "memory", "rss"))
    assert.isNumber(at(status, "payload", "fibers", "sessionActors"))
    assert.isNumber(at(status, "payload", "sessions", "count"))
    const models = await client.request("models.list")
    assert.isTrue(list(at(models, "payload", "models")).some((model) => at(model, "provider") === "anthropic"))
    const agents = await client.request("agents.list")
    assert.strictEqual(at(agents, "payload", "defaultId"), "main")
    assert.strictEqual(at(agents, "payload", "agents", 0, "id"), "main")
    const channels = await client.request("channels.status")
    assert.deepStrictEqual(at(channels, "payload", "channels"), {})
    const presence = await client.request("system-presence")
    assert.strictEqual(at(presence, "payload", 0, "mode"), "gateway")
    assert.strictEqual((await client.request("last-heartbeat")).payload, null)
    const logs = await client.request("logs.tail", { limit: 50 })
    const lines = at(logs, "payload", "lines")
    assert.isArray(lines)
    assert.isTrue(Array.isArray(lines) && lines.some((line) => String(line).includes("gateway listening")), "the gateway's own log lines are in the ring")
    assert.strictEqual((await client.request("logs.tail", { limit: 0 })).error?.code, "INVALID_REQUEST")
    await client.close()
  })
})
