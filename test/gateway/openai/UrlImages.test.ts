/**
 * image_url parts by URL on /v1/chat/completions: off by default (as in
 * OpenClaw; ChatCompletions.test.ts checks the refusal), fetched through the
 * SSRF guard when `images.allowUrl` is on. The content server is on
 * loopback, so this gateway names 127.0.0.1 in `ssrfPolicy.allowedHostnames`;
 * `localhost` stays guarded.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import OpenAI from "openai"
import type { ChatMessage } from "../../../src/gateway/openai/ChatRequest.ts"
import { fetchPolicyOf, fetchUrlImages, urlImagesOf } from "../../../src/gateway/openai/UrlImages.ts"
import { type FakeAnthropicHandle, lastRequestOf, startFakeAnthropic } from "../../support/FakeAnthropic.ts"
import { type StartedGateway, startGateway } from "../../support/Gateway.ts"

const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==", "base64")

let fake: FakeAnthropicHandle
let gateway: StartedGateway
let client: OpenAI
let content: http.Server
let base = ""
const served: Array<string> = []

beforeAll(async () => {
  content = http.createServer((request, response) => {
    served.push(request.url ?? "/")
    if (request.url === "/cat.png") response.writeHead(200, { "content-type": "image/png" }).end(PNG)
    else if (request.url === "/huge.png") response.writeHead(200, { "content-type": "image/png" }).end(Buffer.alloc(4096))
    else if (request.url?.startsWith("/600.png") === true) response.writeHead(200, { "content-type": "image/png" }).end(Buffer.alloc(600))
    else response.writeHead(404).end()
  })
  await new Promise<void>((resolve) => content.listen(0, "127.0.0.1", resolve))
  base = `http://127.0.0.1:${(content.address() as AddressInfo).port}`
  fake = await startFakeAnthropic()
  gateway = await startGateway({
    anthropicUrl: fake.url,
    config: {
      gateway: {
        http: { endpoints: { chatCompletions: { images: { allowUrl: true, maxBytes: 1000 }, ssrfPolicy: { allowedHostnames: ["127.0.0.1"] } } } }
      }
    }
  })
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: gateway.token, maxRetries: 0 })
})

afterAll(async () => {
  await gateway?.stop()
  await fake?.close()
  content?.closeAllConnections()
  await new Promise<void>((resolve) => content.close(() => resolve()))
})

const refusal = async (url: string) => {
  const error = await client.chat.completions.create({
    model: "beamclaw",
    messages: [{ role: "user", content: [{ type: "text", text: "look" }, { type: "image_url", image_url: { url } }] }]
  }).then(() => assert.fail(`expected ${url} to be refused`), (e: unknown) => e)
  if (!(error instanceof OpenAI.BadRequestError)) return assert.fail(`expected a 400, got ${String(error)}`)
  return error
}

describe("/v1/chat/completions: images by URL", () => {
  it("fetches an image_url of the latest user message when images.allowUrl is on, with the served type", async () => {
    const completion = await client.chat.completions.create({
      model: "beamclaw",
      messages: [{ role: "user", content: [{ type: "text", text: "what is this?" }, { type: "image_url", image_url: { url: `${base}/cat.png` } }] }]
    })
    assert.strictEqual(completion.object, "chat.completion")
    const blocks = lastRequestOf(fake).body?.messages.at(-1)?.content
    const image = Array.isArray(blocks) ? blocks.find((block) => block.type === "image") : undefined
    assert.deepStrictEqual(image?.source, { type: "base64", media_type: "image/png", data: PNG.toString("base64") })
  })

  it("refuses guarded hosts, failed fetches and images over images.maxBytes, naming the part", async () => {
    const before = served.length
    const local = await refusal(`http://localhost:${new URL(base).port}/cat.png`)
    assert.strictEqual(local.param, "messages[0].content[1].image_url.url")
    assert.strictEqual(local.code, "url_not_allowed")
    assert.strictEqual(served.length, before, "nothing reached the server")
    const missing = await refusal(`${base}/nope.png`)
    assert.strictEqual(missing.code, "url_fetch_failed")
    assert.include(missing.message, "404")
    const huge = await refusal(`${base}/huge.png`)
    assert.include(huge.message, "1000")
  })
})

describe("fetchUrlImages", () => {
  it("stops downloading where the images' total would pass its cap, not after every image is in memory", async () => {
    const message: ChatMessage = { role: "user", text: "look", imageUrls: [1, 2, 3].map((n) => `${base}/600.png?${n}`), toolCalls: [] }
    const images = urlImagesOf([message], "messages")
    const policy = fetchPolicyOf(undefined, { allowedHostnames: ["127.0.0.1"] }, 1000)
    const before = served.length
    const result = await Effect.runPromise(fetchUrlImages([message], images, policy, 1000))
    if (Result.isSuccess(result)) return assert.fail("expected 1800 bytes of images to be refused against a total of 1000")
    assert.strictEqual(result.failure.code, "invalid_image")
    assert.strictEqual(result.failure.param, "messages[0]")
    assert.include(result.failure.message, "1000")
    assert.deepStrictEqual(served.slice(before), ["/600.png?1", "/600.png?2"], "the third image was never asked for")
  })
})
