/**
 * Images and files by URL on POST /v1/responses, against the gateway process
 * and a content server on loopback. Loopback is what the SSRF guard protects,
 * so this gateway names 127.0.0.1 in `ssrfPolicy.allowedHostnames`; `localhost`
 * stays guarded, which the redirect case uses. The guard's own cases (address
 * ranges, DNS pinning, limits) are in test/platform/GuardedFetch.test.ts.
 */
import * as fs from "node:fs/promises"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as path from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import OpenAI from "openai"
import { type FakeAnthropicHandle, lastRequestOf, startFakeAnthropic, systemText } from "../../support/FakeAnthropic.ts"
import { type StartedGateway, startGateway } from "../../support/Gateway.ts"

const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==", "base64")
const NOTES = "Quarterly notes: the launch is on Tuesday."

let fake: FakeAnthropicHandle
let gateway: StartedGateway
let client: OpenAI
let content: http.Server
let contentBase = ""
const served: Array<string> = []
const aborted: Array<string> = []

beforeAll(async () => {
  content = http.createServer((request, response) => {
    const url = request.url ?? "/"
    served.push(url)
    response.once("close", () => {
      if (!response.writableFinished) aborted.push(url)
    })
    switch (url) {
      case "/docs/notes%20q3.txt":
        response.writeHead(200, { "content-type": "text/plain; charset=utf-8" }).end(NOTES)
        return
      case "/pixel.png":
        response.writeHead(200, { "content-type": "image/png" }).end(PNG)
        return
      case "/pixel-moved":
        response.writeHead(302, { location: "/pixel.png" }).end()
        return
      case "/to-localhost":
        response.writeHead(302, { location: `http://localhost:${(content.address() as AddressInfo).port}/pixel.png` }).end()
        return
      case "/vector.svg":
        response.writeHead(200, { "content-type": "image/svg+xml" }).end("<svg/>")
        return
      case "/big.txt":
        response.writeHead(200, { "content-type": "text/plain" }).end("z".repeat(5000))
        return
      case "/slow.txt":
        // Sends its headers and then nothing: the download hangs until someone gives up on it.
        response.writeHead(200, { "content-type": "text/plain" })
        response.write("first bytes ")
        return
      default:
        response.writeHead(404).end("not here")
    }
  })
  await new Promise<void>((resolve) => content.listen(0, "127.0.0.1", resolve))
  contentBase = `http://127.0.0.1:${(content.address() as AddressInfo).port}`
  fake = await startFakeAnthropic()
  gateway = await startGateway({
    anthropicUrl: fake.url,
    config: {
      gateway: {
        http: {
          endpoints: {
            responses: {
              enabled: true,
              maxUrlParts: 3,
              ssrfPolicy: { allowedHostnames: ["127.0.0.1"] },
              files: { maxBytes: 2000, timeoutMs: 20_000 }
            }
          }
        }
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

const post = (body: unknown, signal?: AbortSignal) =>
  fetch(`${gateway.url}/v1/responses`, {
    method: "POST",
    headers: { authorization: `Bearer ${gateway.token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    ...(signal === undefined ? {} : { signal })
  })

const errorOf = async (response: Response, param: string) => {
  assert.strictEqual(response.status, 400)
  const json: unknown = await response.json()
  const error = typeof json === "object" && json !== null && "error" in json && typeof json.error === "object" && json.error !== null
    ? Object.fromEntries(Object.entries(json.error))
    : {}
  assert.strictEqual(error.type, "invalid_request_error", JSON.stringify(json))
  assert.strictEqual(error.param, param, JSON.stringify(json))
  return { message: String(error.message), code: error.code }
}

const imageBlocks = () => {
  const content = lastRequestOf(fake).body?.messages.at(-1)?.content
  return Array.isArray(content) ? content.filter((block) => block.type === "image") : []
}

describe("/v1/responses: parts by URL", () => {
  it("fetches an input_file by URL into the system prompt, named after the URL's path, and keeps it out of the history", async () => {
    const response = await client.responses.create({
      model: "beamclaw",
      user: "url-files",
      input: [{ role: "user", content: [{ type: "input_text", text: "summarise my notes" }, { type: "input_file", file_url: `${contentBase}/docs/notes%20q3.txt` }] }]
    })
    assert.strictEqual(response.status, "completed")
    const system = systemText(lastRequestOf(fake))
    assert.match(system, /<<<EXTERNAL_UNTRUSTED_CONTENT id="[0-9a-f]{16}">>>\nSource: External\nFile: notes q3\.txt \(text\/plain\)\n---\nQuarterly notes: the launch is on Tuesday\.\n<<<END_EXTERNAL_UNTRUSTED_CONTENT/)
    const sessions = path.join(gateway.home, "agents", "main", "sessions")
    const transcripts = await Promise.all((await fs.readdir(sessions)).filter((name) => name.endsWith(".jsonl")).map((name) => fs.readFile(path.join(sessions, name), "utf8")))
    assert.isTrue(transcripts.some((text) => text.includes("summarise my notes")))
    assert.isFalse(transcripts.some((text) => text.includes("launch is on Tuesday")))
  })

  it("fetches input_image URLs in either spelling, following a redirect, and gives the model the bytes with the served type", async () => {
    await client.responses.create({
      model: "beamclaw",
      input: [{ role: "user", content: [{ type: "input_text", text: "what is this?" }, { type: "input_image", image_url: `${contentBase}/pixel-moved`, detail: "auto" }] }]
    })
    const [viaSdk] = imageBlocks()
    assert.deepStrictEqual(viaSdk?.source, { type: "base64", media_type: "image/png", data: PNG.toString("base64") })

    const response = await post({
      model: "beamclaw",
      input: [{ type: "message", role: "user", content: [{ type: "input_image", source: { type: "url", url: `${contentBase}/pixel.png` } }, { type: "input_text", text: "and this?" }] }]
    })
    assert.strictEqual(response.status, 200, await response.clone().text())
    assert.strictEqual(imageBlocks().length, 1)
  })

  it("fetches only the images of the message the turn answers", async () => {
    const before = served.length
    const response = await post({
      model: "beamclaw",
      input: [
        { role: "user", content: [{ type: "input_image", image_url: `${contentBase}/pixel.png?earlier` }] },
        { role: "assistant", content: "a pixel" },
        { role: "user", content: "thanks" }
      ]
    })
    assert.strictEqual(response.status, 200, await response.clone().text())
    assert.deepStrictEqual(served.slice(before), [], "the earlier message's image was not downloaded")
  })

  it("names the part and the reason when a URL cannot be used, and calls no model", async () => {
    const calls = fake.requests.length
    const missing = await errorOf(await post({ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_file", source: { type: "url", url: `${contentBase}/gone.txt` } }] }] }), "input[0].content[0].source.url")
    assert.include(missing.message, "404")
    assert.strictEqual(missing.code, "url_fetch_failed")

    const big = await errorOf(await post({ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_file", file_url: `${contentBase}/big.txt` }] }] }), "input[0].content[0].file_url")
    assert.include(big.message, "2000")

    // 127.0.0.1 is trusted here; localhost is not, and a redirect does not get around that.
    const before = served.length
    const hop = await errorOf(await post({ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_image", image_url: `${contentBase}/to-localhost` }] }] }), "input[0].content[0].image_url")
    assert.strictEqual(hop.code, "url_not_allowed")
    assert.deepStrictEqual(served.slice(before), ["/to-localhost"])

    const svg = await errorOf(await post({ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_image", image_url: `${contentBase}/vector.svg` }] }] }), "input")
    assert.include(svg.message, "image/svg+xml")

    const tooMany = await errorOf(await post({
      model: "beamclaw",
      input: [{ role: "user", content: [1, 2, 3, 4].map((n) => ({ type: "input_image", image_url: `${contentBase}/pixel.png?${n}` })) }]
    }), "input")
    assert.strictEqual(tooMany.code, "too_many_url_parts")
    assert.include(tooMany.message, "maxUrlParts")
    assert.strictEqual(fake.requests.length, calls, "no model call for a refused request")
  })

  it("stops the download and starts no turn when the client goes away while a URL is being fetched", async () => {
    const calls = fake.requests.length
    const controller = new AbortController()
    const request = post({ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_text", text: "read this" }, { type: "input_file", file_url: `${contentBase}/slow.txt` }] }] }, controller.signal)
      .catch((error: unknown) => error)
    const deadline = Date.now() + 5000
    while (!served.includes("/slow.txt") && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    assert.include(served, "/slow.txt")
    controller.abort()
    await request
    while (!aborted.includes("/slow.txt") && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    assert.include(aborted, "/slow.txt", "the gateway dropped the download")
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.strictEqual(fake.requests.length, calls, "no turn was started")
  })

  it("honours images.allowUrl and files.allowUrl set to false", async () => {
    const file = path.join(gateway.home, "beamclaw.yaml")
    const original = await fs.readFile(file, "utf8")
    const { parse, stringify } = await import("yaml")
    const config: { gateway: { http: { endpoints: { responses: Record<string, unknown> } } } } = parse(original)
    config.gateway.http.endpoints.responses["images"] = { allowUrl: false }
    config.gateway.http.endpoints.responses["files"] = { allowUrl: false }
    await fs.writeFile(file, stringify(config))
    try {
      const body = { model: "beamclaw", input: [{ role: "user", content: [{ type: "input_image", image_url: `${contentBase}/pixel.png` }] }] }
      let response = await post(body)
      const deadline = Date.now() + 8000
      while (response.status === 200 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        response = await post(body)
      }
      const image = await errorOf(response, "input[0].content[0].image_url")
      assert.include(image.message, "images.allowUrl")
      const fileRefused = await errorOf(await post({ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_file", file_url: `${contentBase}/docs/notes%20q3.txt` }] }] }), "input[0].content[0].file_url")
      assert.include(fileRefused.message, "files.allowUrl")
    } finally {
      await fs.writeFile(file, original)
    }
  })
})
