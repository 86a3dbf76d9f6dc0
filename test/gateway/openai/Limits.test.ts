/**
 * The chat completions body limit as configured (declared and chunked
 * bodies), and the endpoint switch, which a config edit flips without a
 * restart.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { stringify } from "yaml"
import { type FakeAnthropicHandle, startFakeAnthropic } from "../../support/FakeAnthropic.ts"
import { type StartedGateway, startGateway } from "../../support/Gateway.ts"
import { chunked } from "../../support/ChunkedBody.ts"

let fake: FakeAnthropicHandle
let gateway: StartedGateway

const endpoint = (enabled: boolean) => ({ http: { endpoints: { chatCompletions: { enabled, maxBodyBytes: 2048 } } } })

beforeAll(async () => {
  fake = await startFakeAnthropic()
  gateway = await startGateway({ anthropicUrl: fake.url, config: { gateway: endpoint(true) } })
})

afterAll(async () => {
  await gateway?.stop()
  await fake?.close()
})

const post = (body: string | ReadableStream<Uint8Array>, headers: Record<string, string> = {}) =>
  fetch(`${gateway.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${gateway.token}`, "content-type": "application/json", ...headers },
    body,
    duplex: "half"
  })

describe("limits", () => {
  it("takes a body under the configured limit", async () => {
    const response = await post(JSON.stringify({ model: "beamclaw", messages: [{ role: "user", content: "small" }] }))
    assert.strictEqual(response.status, 200)
  })

  it("answers 413 to a declared or a chunked body over the configured limit", async () => {
    const big = JSON.stringify({ model: "beamclaw", messages: [{ role: "user", content: "x".repeat(4096) }] })
    const declared = await post(big)
    assert.strictEqual(declared.status, 413)
    const body = JSON.stringify(await declared.json())
    assert.include(body, "\"code\":\"payload_too_large\"")
    assert.include(body, "2048 bytes")
    const streamed = await post(chunked(big, 8))
    assert.strictEqual(streamed.status, 413)
    // A chunked body under the limit is read whole.
    const ok = await post(chunked(JSON.stringify({ model: "beamclaw", messages: [{ role: "user", content: "chunky" }] }), 4))
    assert.strictEqual(ok.status, 200)
  })

  it("turns the endpoints off (404) when the config says so, without a restart", async () => {
    const config = { models: { providers: { anthropic: { baseUrl: fake.url, apiKey: "sk-test" } } }, gateway: endpoint(false) }
    await fs.writeFile(path.join(gateway.home, "beamclaw.yaml"), stringify(config))
    const deadline = Date.now() + 8000
    let status = 0
    while (Date.now() < deadline) {
      status = (await post(JSON.stringify({ model: "beamclaw", messages: [{ role: "user", content: "x" }] }))).status
      if (status === 404) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    assert.strictEqual(status, 404)
    const models = await fetch(`${gateway.url}/v1/models`, { headers: { authorization: `Bearer ${gateway.token}` } })
    assert.strictEqual(models.status, 404)
  })
})
