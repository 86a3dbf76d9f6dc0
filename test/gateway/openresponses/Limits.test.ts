/**
 * The /v1/responses switch and body limit: off by default (404, as any
 * unknown path), turned on by a config edit without a restart, then its own
 * maxBodyBytes (declared and chunked bodies), and /v1/models served while
 * only this endpoint is on.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import OpenAI from "openai"
import { stringify } from "yaml"
import { type FakeAnthropicHandle, lastRequestOf, startFakeAnthropic, systemText } from "../../support/FakeAnthropic.ts"
import { type StartedGateway, startGateway } from "../../support/Gateway.ts"
import { chunked } from "../../support/ChunkedBody.ts"

let fake: FakeAnthropicHandle
let gateway: StartedGateway

// Chat completions off, responses not mentioned: its default applies.
const initial = { gateway: { http: { endpoints: { chatCompletions: { enabled: false } } } } }

beforeAll(async () => {
  fake = await startFakeAnthropic()
  gateway = await startGateway({ anthropicUrl: fake.url, config: initial })
})

afterAll(async () => {
  await gateway?.stop()
  await fake?.close()
})

const post = (body: string | ReadableStream<Uint8Array>, headers: Record<string, string> = {}) =>
  fetch(`${gateway.url}/v1/responses`, {
    method: "POST",
    headers: { authorization: `Bearer ${gateway.token}`, "content-type": "application/json", ...headers },
    body,
    duplex: "half"
  })

const small = JSON.stringify({ model: "beamclaw", input: "small" })

const writeConfig = (endpoints: Record<string, unknown>) =>
  fs.writeFile(
    path.join(gateway.home, "beamclaw.yaml"),
    stringify({ models: { providers: { anthropic: { baseUrl: fake.url, apiKey: "sk-test" } } }, gateway: { http: { endpoints } } })
  )

const waitForStatus = async (want: number) => {
  const deadline = Date.now() + 8000
  let status = 0
  while (Date.now() < deadline) {
    status = (await post(small)).status
    if (status === want) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return status
}

describe("switch and limits", () => {
  it("is off by default: 404 for every method, as an unknown path, and /v1/models too", async () => {
    const response = await post(small)
    assert.strictEqual(response.status, 404)
    assert.strictEqual(await response.text(), "Not Found")
    assert.strictEqual((await fetch(`${gateway.url}/v1/responses`)).status, 404)
    const models = await fetch(`${gateway.url}/v1/models`, { headers: { authorization: `Bearer ${gateway.token}` } })
    assert.strictEqual(models.status, 404)
  })

  it("turns on with a config edit, without a restart, and serves /v1/models while chat completions stay off", async () => {
    // OpenClaw's file/image/URL keys load too; of them the size, length and type limits apply (no URL is fetched).
    await writeConfig({
      chatCompletions: { enabled: false },
      responses: {
        enabled: true,
        maxBodyBytes: 2048,
        maxUrlParts: 4,
        files: { allowUrl: false, maxBytes: 1024, maxChars: 40, allowedMimes: ["text/plain", "application/pdf"], pdf: { maxPages: 2 } },
        images: { allowUrl: false, maxBytes: 64, allowedMimes: ["image/png", "image/heic"] }
      }
    })
    assert.strictEqual(await waitForStatus(200), 200)
    const client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: gateway.token, maxRetries: 0 })
    const response = await client.responses.create({ model: "beamclaw", input: "on now" })
    assert.strictEqual(response.output_text, "echo: on now")
    const page = await client.models.list()
    assert.include(page.data.map((model) => model.id), "beamclaw/main")
    const chat = await fetch(`${gateway.url}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${gateway.token}` }, body: "{}" })
    assert.strictEqual(chat.status, 404)
  })

  it("applies images.maxBytes and images.allowedMimes to base64 images", async () => {
    const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    const image = (mediaType: string, data: string) =>
      JSON.stringify({ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_image", source: { type: "base64", media_type: mediaType, data } }] }] })
    const tooBig = await post(image("image/png", png))
    assert.strictEqual(tooBig.status, 400)
    assert.include(await tooBig.text(), "64-byte limit per image")
    const gif = await post(image("image/gif", "R0lGODlhAQABAAAAACw="))
    assert.strictEqual(gif.status, 400)
    assert.include(await gif.text(), "image/gif is not allowed")
    // HEIC is listed but cannot be delivered without a converter, so it stays refused.
    const heic = await post(image("image/heic", "AAAA"))
    assert.strictEqual(heic.status, 400)
    assert.include(await heic.text(), "image/heic is not allowed")
    const tiny = await post(image("image/png", "iVBORw0KGgo="))
    assert.strictEqual(tiny.status, 200)
  })

  it("applies files.maxBytes, files.maxChars and files.allowedMimes to base64 files", async () => {
    const file = (mediaType: string, text: string) =>
      JSON.stringify({ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_text", text: "read it" }, { type: "input_file", source: { type: "base64", media_type: mediaType, data: Buffer.from(text).toString("base64"), filename: "f" } }] }] })
    const tooBig = await post(file("text/plain", "x".repeat(1025)))
    assert.strictEqual(tooBig.status, 400)
    assert.include(await tooBig.text(), "the limit is 1024 (gateway.http.endpoints.responses.files.maxBytes)")
    const csv = await post(file("text/csv", "a,b"))
    assert.strictEqual(csv.status, 400)
    assert.include(await csv.text(), "files of type text/csv are not allowed here; allowed: text/plain")
    const long = await post(file("text/plain", `${"a".repeat(40)}BEYOND`))
    assert.strictEqual(long.status, 200)
    const system = systemText(lastRequestOf(fake))
    assert.include(system, `${"a".repeat(40)}\n[truncated: the file has 46 characters; the first 40 are shown]`)
    assert.notInclude(system, "BEYOND")
  })

  it("answers 413 to a declared or a chunked body over responses.maxBodyBytes", async () => {
    const big = JSON.stringify({ model: "beamclaw", input: "x".repeat(4096) })
    const declared = await post(big)
    assert.strictEqual(declared.status, 413)
    const body = JSON.stringify(await declared.json())
    assert.include(body, "\"code\":\"payload_too_large\"")
    assert.include(body, "2048 bytes")
    assert.include(body, "responses.maxBodyBytes")
    assert.strictEqual((await post(chunked(big, 8))).status, 413)
    // A chunked body under the limit is read whole.
    assert.strictEqual((await post(chunked(small, 4))).status, 200)
  })

  it("turns off again with a config edit: 404", async () => {
    await writeConfig({ chatCompletions: { enabled: false }, responses: { enabled: false } })
    assert.strictEqual(await waitForStatus(404), 404)
  })
})
