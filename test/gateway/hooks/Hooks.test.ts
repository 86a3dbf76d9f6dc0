/**
 * POST /hooks/wake and /hooks/agent against the real gateway process, with
 * fetch, over the fake Anthropic.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { type FakeAnthropicHandle, startFakeAnthropic } from "../../support/FakeAnthropic.ts"
import { type StartedGateway, startGateway } from "../../support/Gateway.ts"

const HOOK_TOKEN = "hook-secret-for-tests"

let fake: FakeAnthropicHandle
let gateway: StartedGateway
let disabled: StartedGateway

beforeAll(async () => {
  fake = await startFakeAnthropic()
  ;[gateway, disabled] = await Promise.all([
    startGateway({ anthropicUrl: fake.url, config: { hooks: { enabled: true, token: HOOK_TOKEN } } }),
    startGateway({ anthropicUrl: fake.url })
  ])
})

afterAll(async () => {
  await Promise.all([gateway?.stop(), disabled?.stop()])
  await fake?.close()
})

const hook = (path: string, body: unknown, headers: Record<string, string> = { authorization: `Bearer ${HOOK_TOKEN}` }, base = gateway) =>
  fetch(`${base.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body)
  })

const jsonOf = async (response: Response): Promise<Record<string, unknown>> => {
  const body: unknown = await response.json()
  assert.isObject(body)
  return typeof body === "object" && body !== null ? Object.fromEntries(Object.entries(body)) : {}
}

const waitFor = async (check: () => boolean, what: string) => {
  const deadline = Date.now() + 5000
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

const sentTexts = () =>
  fake.requests.map((r) => JSON.stringify(r.body?.messages ?? []))

describe("/hooks/agent", () => {
  it("runs an isolated turn and answers with its run id at once", async () => {
    const before = fake.requests.length
    const response = await hook("/hooks/agent", { message: "Build 42 failed on main", name: "CI" })
    assert.strictEqual(response.status, 200)
    const body = await jsonOf(response)
    assert.strictEqual(body.ok, true)
    assert.isString(body.runId)
    await waitFor(() => fake.requests.length > before, "the hook's model call")
    const sent = JSON.stringify(fake.requests[before]?.body?.messages ?? [])
    assert.include(sent, "Build 42 failed on main")
    assert.include(sent, "SECURITY NOTICE")
    assert.include(sent, "\\\"CI\\\"")
    assert.include(sent, "<<<EXTERNAL_UNTRUSTED_CONTENT>>>")
    // A fresh session each time: the model saw only this message.
    assert.strictEqual(fake.requests[before]?.body?.messages.length, 1)
  })

  it("waits for the run with waitForCompletion, and takes the token from either header", async () => {
    for (const headers of [{ "x-beamclaw-token": HOOK_TOKEN }, { "x-openclaw-token": HOOK_TOKEN }]) {
      const response = await hook("/hooks/agent", { message: "wait for me", waitForCompletion: true }, headers)
      assert.strictEqual(response.status, 200)
      const body = await jsonOf(response)
      assert.strictEqual(body.ok, true)
      assert.deepStrictEqual(body.completion, { status: "ok", replyDisposition: "visible" })
    }
  })

  it("reports a failed run in the completion", async () => {
    fake.push({ kind: "error", status: 400, type: "invalid_request_error", message: "bad request upstream" })
    const body = await jsonOf(await hook("/hooks/agent", { message: "this one fails", waitForCompletion: true }))
    assert.deepStrictEqual(body.completion, { status: "error", replyDisposition: "empty" })
  })

  it("replays an idempotency key with the same run id and one run", async () => {
    const key = `idem-${crypto.randomUUID()}`
    const before = fake.requests.length
    const first = await jsonOf(await hook("/hooks/agent", { message: "only once", waitForCompletion: true }, { authorization: `Bearer ${HOOK_TOKEN}`, "idempotency-key": key }))
    const second = await jsonOf(await hook("/hooks/agent", { message: "only once", idempotencyKey: key }))
    assert.strictEqual(first.runId, second.runId)
    const third = await jsonOf(await hook("/hooks/agent", { message: "only once" }, { authorization: `Bearer ${HOOK_TOKEN}`, "x-openclaw-idempotency-key": key }))
    assert.strictEqual(third.runId, first.runId)
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.strictEqual(sentTexts().slice(before).filter((t) => t.includes("only once")).length, 1)
  })

  it("refuses bad payloads with OpenClaw's messages", async () => {
    const cases: ReadonlyArray<readonly [unknown, string]> = [
      [{}, "message required"],
      [{ message: "   " }, "message required"],
      [{ message: "x", sessionKey: "hook:mine" }, "sessionKey is disabled"],
      [{ message: "x", agentId: "ghost" }, "not a configured agent"],
      [{ message: "x", model: "" }, "model required"],
      [{ message: "x", model: "anthropic/claude" }, "not supported"],
      [{ message: "x", channel: "discord", to: "123" }, "no channels are configured"],
      [{ message: "x", wakeMode: "later" }, "wakeMode must be now|next-heartbeat"],
      [{ message: "x", sessionMode: "persistent" }, "persistent"],
      [[1, 2], "JSON object"]
    ]
    for (const [payload, error] of cases) {
      const response = await hook("/hooks/agent", payload)
      assert.strictEqual(response.status, 400, JSON.stringify(payload))
      const body = await jsonOf(response)
      assert.strictEqual(body.ok, false)
      assert.include(String(body.error), error)
    }
    const malformed = await hook("/hooks/agent", "{not json")
    assert.strictEqual(malformed.status, 400)
    assert.include(String((await jsonOf(malformed)).error), "invalid JSON")
  })

  it("answers 413 past 256 KiB", async () => {
    const response = await hook("/hooks/agent", { message: "x".repeat(300 * 1024) })
    assert.strictEqual(response.status, 413)
    assert.deepStrictEqual(await jsonOf(response), { ok: false, error: "payload too large" })
  })
})

describe("/hooks/wake", () => {
  it("records a wake and says that no heartbeat runs", async () => {
    const response = await hook("/hooks/wake", { text: "New email arrived", mode: "next-heartbeat" })
    assert.strictEqual(response.status, 200)
    const body = await jsonOf(response)
    assert.strictEqual(body.ok, true)
    assert.strictEqual(body.mode, "next-heartbeat")
    assert.strictEqual(body.heartbeat, "unavailable")
    assert.strictEqual((await jsonOf(await hook("/hooks/wake", { text: "ping" }))).mode, "now")
  })

  it("refuses a wake without text or with a bad mode", async () => {
    const missing = await hook("/hooks/wake", {})
    assert.strictEqual(missing.status, 400)
    assert.deepStrictEqual(await jsonOf(missing), { ok: false, error: "text required" })
    const badMode = await hook("/hooks/wake", { text: "x", mode: "soon" })
    assert.strictEqual(badMode.status, 400)
  })
})

describe("hook requests", () => {
  it("refuses a token in the query string, even beside a good header", async () => {
    const response = await hook(`/hooks/agent?token=${HOOK_TOKEN}`, { message: "x" })
    assert.strictEqual(response.status, 400)
    assert.include(await response.text(), "query parameters are not allowed")
  })

  it("answers 405 to other methods, 404 to unknown paths", async () => {
    const get = await fetch(`${gateway.url}/hooks/agent`, { headers: { authorization: `Bearer ${HOOK_TOKEN}` } })
    assert.strictEqual(get.status, 405)
    assert.strictEqual(get.headers.get("allow"), "POST")
    assert.strictEqual((await hook("/hooks", { message: "x" })).status, 404)
    assert.strictEqual((await hook("/hooks/nothing-here", { message: "x" })).status, 404)
  })

  it("is off unless hooks.enabled", async () => {
    const response = await hook("/hooks/agent", { message: "x" }, { authorization: `Bearer ${HOOK_TOKEN}` }, disabled)
    assert.strictEqual(response.status, 404)
  })

  it("answers 401 to a missing or wrong token, then 429 with Retry-After; a good token still works", async () => {
    assert.strictEqual((await hook("/hooks/wake", { text: "x" }, {})).status, 401)
    // The gateway token is not the hook token.
    assert.strictEqual((await hook("/hooks/wake", { text: "x" }, { authorization: `Bearer ${gateway.token}` })).status, 401)
    let last: Response | undefined
    for (let i = 0; i < 20; i++) last = await hook("/hooks/wake", { text: "x" }, { "x-openclaw-token": "wrong" })
    assert.strictEqual(last?.status, 429)
    assert.isAbove(Number(last?.headers.get("retry-after")), 0)
    assert.strictEqual((await hook("/hooks/wake", { text: "x" })).status, 200)
    assert.strictEqual((await hook("/hooks/wake", { text: "x" }, { "x-openclaw-token": "wrong" })).status, 401)
  })
})
