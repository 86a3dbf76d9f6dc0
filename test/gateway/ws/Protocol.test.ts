/**
 * OpenClaw protocol v4 on a real gateway process: the handshake, every
 * protocol error path with its response and close code, scopes, devices,
 * ticks and the shutdown notice.
 */
import { assert, describe, it } from "@effect/vitest"
import { gatewayForFile, startGateway } from "../../support/Gateway.ts"
import { MAX_PAYLOAD_BYTES } from "../../../src/gateway/ws/Frames.ts"
import { WEBSOCKET_MAX_PAYLOAD_BYTES } from "../../../src/runtime/Gateway.ts"
import { at, connect, connectParams, list, makeDevice, signDevice, WsClient } from "./WsClient.ts"

const env = gatewayForFile({ env: { BEAMCLAW_HANDSHAKE_TIMEOUT_MS: "600", BEAMCLAW_TICK_INTERVAL_MS: "250" } })

describe("handshake", () => {
  it("sends connect.challenge first, then hello-ok with features, snapshot, auth and policy", async () => {
    const client = await WsClient.open(env.gateway.wsUrl)
    const challenge = await client.challenge()
    assert.strictEqual(client.frames[0], challenge)
    assert.isString(at(challenge, "payload", "nonce"))
    assert.isNumber(at(challenge, "payload", "ts"))
    const hello = await client.request("connect", connectParams(env.gateway.token))
    assert.strictEqual(hello.ok, true)
    assert.strictEqual(at(hello, "payload", "type"), "hello-ok")
    assert.strictEqual(at(hello, "payload", "protocol"), 4)
    const methods = list(at(hello, "payload", "features", "methods"))
    for (const method of ["health", "status", "chat.send", "chat.history", "chat.abort", "chat.inject", "agent", "agent.wait", "send", "sessions.list", "sessions.get", "sessions.preview", "sessions.patch", "sessions.reset", "sessions.delete", "config.get", "config.patch", "config.apply", "models.list", "agents.list", "channels.status", "system-presence", "last-heartbeat", "logs.tail", "device.pair.list", "device.pair.approve", "device.pair.reject", "device.pair.remove"]) {
      assert.include(methods, method)
    }
    assert.deepStrictEqual([...list(at(hello, "payload", "features", "events"))].sort(), ["agent", "chat", "connect.challenge", "device.pair.requested", "device.pair.resolved", "health", "presence", "sessions.changed", "shutdown", "tick"])
    assert.deepStrictEqual(at(hello, "payload", "policy"), { maxPayload: 25 * 1024 * 1024, maxBufferedBytes: 50 * 1024 * 1024, tickIntervalMs: 250 })
    assert.deepStrictEqual(at(hello, "payload", "auth"), { role: "operator", scopes: ["operator.admin"] })
    assert.deepStrictEqual(at(hello, "payload", "snapshot", "sessionDefaults"), { defaultAgentId: "main", mainKey: "main", mainSessionKey: "agent:main:main", scope: "per-sender" })
    assert.strictEqual(at(hello, "payload", "snapshot", "authMode"), "token")
    assert.isNumber(at(hello, "payload", "snapshot", "uptimeMs"))
    assert.isNumber(at(hello, "payload", "snapshot", "stateVersion", "presence"))
    assert.strictEqual(at(hello, "payload", "snapshot", "health", "defaultAgentId"), "main")
    assert.isAbove(list(at(hello, "payload", "snapshot", "presence")).length, 0)
    // Ticks follow at the advertised interval.
    const tick = await client.waitFor((frame) => frame.event === "tick", 3000)
    assert.isNumber(at(tick, "payload", "ts"))
    assert.isNumber(tick.seq)
    await client.close()
  })

  it("a first frame that is not a request closes 1008 without a response", async () => {
    const client = await WsClient.open(env.gateway.wsUrl)
    await client.challenge()
    client.sendRaw(JSON.stringify({ type: "event", event: "hello" }))
    const closed = await client.closed
    assert.deepStrictEqual(closed, { code: 1008, reason: "invalid request frame" })
    assert.isFalse(client.frames.some((frame) => frame.type === "res"))
  })

  it("a first request other than connect gets INVALID_REQUEST and a 1008 close", async () => {
    const client = await WsClient.open(env.gateway.wsUrl)
    await client.challenge()
    const response = await client.request("health", {})
    assert.strictEqual(response.ok, false)
    assert.strictEqual(response.error?.code, "INVALID_REQUEST")
    assert.strictEqual(response.error?.message, "invalid handshake: first request must be connect")
    assert.deepStrictEqual(await client.closed, { code: 1008, reason: "invalid handshake: first request must be connect" })
  })

  it("connect params that do not validate are named in the error", async () => {
    const client = await WsClient.open(env.gateway.wsUrl)
    await client.challenge()
    const response = await client.request("connect", { ...connectParams(env.gateway.token), client: { id: "nobody", version: "1", platform: "linux", mode: "cli" } })
    assert.strictEqual(response.error?.code, "INVALID_REQUEST")
    assert.match(response.error?.message ?? "", /^invalid connect params: /)
    assert.include(response.error?.message ?? "", '"openclaw-control-ui"')
    assert.include(response.error?.message ?? "", '["client"]["id"]')
    assert.strictEqual((await client.closed).code, 1008)
  })

  it("malformed JSON before the handshake closes 1008", async () => {
    const client = await WsClient.open(env.gateway.wsUrl)
    await client.challenge()
    client.sendRaw("{not json")
    assert.deepStrictEqual(await client.closed, { code: 1008, reason: "invalid handshake: malformed JSON" })
  })

  it("a protocol range without v4 is refused with details and close 1002", async () => {
    const client = await WsClient.open(env.gateway.wsUrl)
    await client.challenge()
    const response = await client.request("connect", connectParams(env.gateway.token, { minProtocol: 2, maxProtocol: 3 }))
    assert.strictEqual(response.error?.code, "INVALID_REQUEST")
    assert.strictEqual(response.error?.message, "protocol mismatch")
    assert.strictEqual(at(response.error, "details", "expectedProtocol"), 4)
    assert.strictEqual(at(response.error, "details", "code"), "PROTOCOL_MISMATCH")
    assert.deepStrictEqual(await client.closed, { code: 1002, reason: "protocol mismatch" })
  })

  it("a range that includes v4 is accepted (3..5)", async () => {
    const { client, hello } = await connect(env.gateway.wsUrl, env.gateway.token, { minProtocol: 3, maxProtocol: 5 })
    assert.strictEqual(hello.ok, true)
    assert.strictEqual(at(hello, "payload", "protocol"), 4)
    await client.close()
  })

  it("a wrong token is refused with AUTH_TOKEN_MISMATCH and close 1008; a missing one with AUTH_TOKEN_MISSING", async () => {
    const client = await WsClient.open(env.gateway.wsUrl)
    await client.challenge()
    const response = await client.request("connect", connectParams("wrong-token"))
    assert.strictEqual(response.error?.code, "INVALID_REQUEST")
    assert.match(response.error?.message ?? "", /^unauthorized: /)
    assert.strictEqual(at(response.error, "details", "code"), "AUTH_TOKEN_MISMATCH")
    assert.strictEqual((await client.closed).code, 1008)

    const bare = await WsClient.open(env.gateway.wsUrl)
    await bare.challenge()
    const missing = await bare.request("connect", connectParams(undefined))
    assert.strictEqual(at(missing.error, "details", "code"), "AUTH_TOKEN_MISSING")
    assert.strictEqual((await bare.closed).code, 1008)
  })

  it("a pre-connect frame over 64 KiB closes 1009", async () => {
    const client = await WsClient.open(env.gateway.wsUrl)
    await client.challenge()
    client.sendRaw(JSON.stringify({ type: "req", id: "1", method: "connect", params: { pad: "x".repeat(70 * 1024) } }))
    assert.deepStrictEqual(await client.closed, { code: 1009, reason: "preauth payload too large" })
  })

  it("no connect within the handshake timeout closes the socket", async () => {
    const client = await WsClient.open(env.gateway.wsUrl)
    await client.challenge()
    const started = Date.now()
    assert.deepStrictEqual(await client.closed, { code: 1008, reason: "handshake timeout" })
    assert.isAtLeast(Date.now() - started, 300)
  })

  it("a plain HTTP GET / is told to upgrade", async () => {
    const response = await fetch(env.gateway.url)
    assert.strictEqual(response.status, 426)
    assert.strictEqual(at(await response.json(), "error", "type"), "upgrade_required")
  })
})

describe("after the handshake", () => {
  it("an unknown method gets an error response and the socket stays open", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    const response = await client.request("no.such.method", {})
    assert.strictEqual(response.ok, false)
    assert.deepStrictEqual(response.error, { code: "INVALID_REQUEST", message: "unknown method: no.such.method" })
    const health = await client.request("health")
    assert.strictEqual(health.ok, true)
    await client.close()
  })

  it("malformed JSON and invalid frames get INVALID_REQUEST responses, not silence", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    client.sendRaw("{oops")
    const malformed = await client.waitFor((frame) => frame.type === "res" && frame.id === "invalid")
    assert.strictEqual(malformed.error?.code, "INVALID_REQUEST")
    assert.match(malformed.error?.message ?? "", /^invalid request frame: malformed JSON/)
    client.sendRaw(JSON.stringify({ type: "req", id: "no-method" }))
    const invalid = await client.waitFor((frame) => frame.type === "res" && frame.id === "no-method")
    assert.match(invalid.error?.message ?? "", /^invalid request frame: /)
    assert.strictEqual((await client.request("health")).ok, true)
    await client.close()
  })

  it("bad params are refused with the method named", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    const response = await client.request("chat.history", { sessionKey: "main", limit: "lots" })
    assert.strictEqual(response.error?.code, "INVALID_REQUEST")
    assert.match(response.error?.message ?? "", /^invalid chat\.history params: /)
    const extra = await client.request("health", { surprise: true })
    assert.match(extra.error?.message ?? "", /^invalid health params: /)
    await client.close()
  })

  it("at most 1,024 requests in flight per connection; the rest are answered UNAVAILABLE at once, and the connection lives on", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    for (let i = 0; i < 1100; i++) client.sendRaw(JSON.stringify({ type: "req", id: `w${i}`, method: "agent.wait", params: { runId: `never-${i}`, timeoutMs: 1500 } }))
    await client.waitFor((frame) => frame.type === "res" && frame.id === "w1099")
    const refused = client.frames.filter((frame) => frame.type === "res" && frame.error?.code === "UNAVAILABLE")
    assert.strictEqual(refused.length, 1100 - 1024)
    assert.match(refused[0]?.error?.message ?? "", /too many requests in flight on this connection \(at most 1024\)/)
    // Once the waits end, the connection takes requests again.
    await client.waitFor((frame) => frame.type === "res" && frame.id === "w1023", 10_000)
    assert.strictEqual((await client.request("health")).ok, true)
    await client.close()
  })

  it("a frame over maxPayload closes 1009, refused by the WebSocket server as it arrives (not buffered whole first)", async () => {
    assert.strictEqual(WEBSOCKET_MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES, "the ws server's limit is the protocol's")
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    client.sendRaw(JSON.stringify({ type: "req", id: "big", method: "health", params: { pad: "x".repeat(25 * 1024 * 1024 + 10) } }))
    assert.strictEqual((await client.closed).code, 1009)
  })

  it("methods need their scope: read cannot write, write satisfies read, admin does everything", async () => {
    const read = await connect(env.gateway.wsUrl, env.gateway.token, { scopes: ["operator.read"] })
    assert.strictEqual((await read.client.request("health")).ok, true)
    assert.strictEqual((await read.client.request("config.get")).ok, true)
    const denied = await read.client.request("chat.send", { sessionKey: "main", message: "hi", idempotencyKey: "scoped-1" })
    assert.strictEqual(denied.error?.code, "FORBIDDEN")
    assert.strictEqual(denied.error?.message, "missing scope: operator.write")
    assert.deepStrictEqual(at(denied.error, "details"), { code: "MISSING_SCOPE", missingScope: "operator.write", requiredScopes: ["operator.write"] })
    const patch = await read.client.request("config.patch", { raw: "{}" })
    assert.strictEqual(patch.error?.message, "missing scope: operator.admin")
    // A method the gateway does not have is named as unknown whatever the scopes (hello-ok lists the methods anyway).
    assert.deepStrictEqual((await read.client.request("no.such.method")).error, { code: "INVALID_REQUEST", message: "unknown method: no.such.method" })
    await read.client.close()

    const write = await connect(env.gateway.wsUrl, env.gateway.token, { scopes: ["operator.write"] })
    assert.strictEqual((await write.client.request("sessions.list")).ok, true)
    await write.client.close()
  })

  it("a non-CLI client with a token and no device keeps no scopes, as OpenClaw", async () => {
    const { client, hello } = await connect(env.gateway.wsUrl, env.gateway.token, { client: { id: "test", version: "1", platform: "linux", mode: "test" } })
    assert.deepStrictEqual(at(hello, "payload", "auth", "scopes"), [])
    assert.strictEqual((await client.request("health")).error?.code, "FORBIDDEN")
    await client.close()
  })
})

describe("device identity", () => {
  it("a loopback device with a valid signature over the nonce is approved silently", async () => {
    const device = makeDevice()
    const client = await WsClient.open(env.gateway.wsUrl)
    const nonce = String(at(await client.challenge(), "payload", "nonce"))
    const scopes = ["operator.admin"]
    const hello = await client.request("connect", connectParams(env.gateway.token, { client: { id: "test", version: "1", platform: "linux", mode: "test" }, device: signDevice(device, { nonce, token: env.gateway.token, scopes, clientId: "test", mode: "test" }) }))
    assert.strictEqual(hello.ok, true)
    assert.deepStrictEqual(at(hello, "payload", "auth", "scopes"), scopes)
    assert.strictEqual(at(hello, "payload", "auth", "role"), "operator")
    assert.isString(at(hello, "payload", "auth", "deviceToken"))
    assert.isNumber(at(hello, "payload", "auth", "issuedAtMs"))
    const presence = list(at(hello, "payload", "snapshot", "presence"))
    assert.isTrue(presence.some((entry) => at(entry, "deviceId") === device.id))
    await client.close()
  })

  it("a bad signature, a foreign nonce, a mismatched id, a stale signature or a bad key is refused with details and 1008", async () => {
    const device = makeDevice()
    const other = makeDevice()
    const cases = [
      { make: (nonce: string) => ({ ...signDevice(device, { nonce, token: env.gateway.token, scopes: ["operator.admin"] }), signature: signDevice(other, { nonce, token: env.gateway.token, scopes: ["operator.admin"] }).signature }), message: "device signature invalid", code: "DEVICE_AUTH_SIGNATURE_INVALID", reason: "device-signature" },
      { make: (_nonce: string) => signDevice(device, { nonce: "not-the-challenge", token: env.gateway.token, scopes: ["operator.admin"] }), message: "device nonce mismatch", code: "DEVICE_AUTH_NONCE_MISMATCH", reason: "device-nonce-mismatch" },
      { make: (nonce: string) => ({ ...signDevice(device, { nonce, token: env.gateway.token, scopes: ["operator.admin"] }), id: other.id }), message: "device identity mismatch", code: "DEVICE_AUTH_DEVICE_ID_MISMATCH", reason: "device-id-mismatch" },
      { make: (nonce: string) => signDevice(device, { nonce, token: env.gateway.token, scopes: ["operator.admin"], signedAt: Date.now() - 60 * 60_000 }), message: "device signature expired", code: "DEVICE_AUTH_SIGNATURE_EXPIRED", reason: "device-signature-stale" },
      { make: (_nonce: string) => { const { nonce: _, ...rest } = signDevice(device, { nonce: "", token: env.gateway.token, scopes: ["operator.admin"] }); return rest }, message: "device nonce required", code: "DEVICE_AUTH_NONCE_REQUIRED", reason: "device-nonce-missing" }
    ]
    for (const { make, message, code, reason } of cases) {
      const client = await WsClient.open(env.gateway.wsUrl)
      const nonce = String(at(await client.challenge(), "payload", "nonce"))
      const response = await client.request("connect", connectParams(env.gateway.token, { device: make(nonce) }))
      assert.strictEqual(response.error?.code, "INVALID_REQUEST")
      assert.strictEqual(response.error?.message, message)
      assert.deepStrictEqual(response.error?.details, { code, reason })
      assert.deepStrictEqual(await client.closed, { code: 1008, reason: message })
    }
  })

  it("a node without a device identity is NOT_PAIRED", async () => {
    const client = await WsClient.open(env.gateway.wsUrl)
    await client.challenge()
    const response = await client.request("connect", connectParams(env.gateway.token, { role: "node", scopes: [], client: { id: "node-host", version: "1", platform: "linux", mode: "node" } }))
    assert.strictEqual(response.error?.code, "NOT_PAIRED")
    assert.strictEqual(response.error?.message, "device identity required")
    assert.strictEqual((await client.closed).code, 1008)
  })
})

describe("shutdown", () => {
  it("a graceful stop sends a shutdown event, then closes 1012", async () => {
    const own = await startGateway({ anthropicUrl: env.fake.url })
    const { client } = await connect(own.wsUrl, own.token)
    const startedAt = Date.now()
    const stopping = own.stop()
    const closed = await client.closed
    // Well before the HTTP server's 5 s graceful timeout: the notice does not wait for open sockets.
    assert.isBelow(Date.now() - startedAt, 2500)
    await stopping
    assert.isTrue(client.frames.some((frame) => frame.event === "shutdown" && at(frame, "payload", "reason") === "gateway stopping"))
    assert.deepStrictEqual(closed, { code: 1012, reason: "service restart" })
  })
})
