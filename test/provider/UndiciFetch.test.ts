import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as undici from "undici"
import { makeFetch } from "../../src/provider/UndiciFetch.ts"
import { makeForwardProxy } from "../support/ForwardProxy.ts"

interface Seen {
  readonly method: string
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
}

const listen = async (server: http.Server): Promise<string> => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return `http://127.0.0.1:${port}`
}

const close = (server: http.Server) => new Promise<void>((resolve) => server.close(() => resolve()))

const readAll = async (response: Response): Promise<{ text: string; chunks: number }> => {
  const reader = response.body?.getReader()
  if (reader === undefined) return { text: "", chunks: 0 }
  const decoder = new TextDecoder()
  let text = ""
  let chunks = 0
  for (;;) {
    const read = await reader.read()
    if (read.done) return { text: text + decoder.decode(), chunks }
    chunks++
    text += decoder.decode(read.value, { stream: true })
  }
}

describe("UndiciFetch", () => {
  const seen: Array<Seen> = []
  let base = ""
  let aborted = 0
  const server = http.createServer((request, response) => {
    let body = ""
    request.setEncoding("utf8")
    request.on("data", (chunk: string) => body += chunk)
    request.on("end", () => {
      seen.push({ method: request.method ?? "", url: request.url ?? "", headers: request.headers, body })
      switch (request.url) {
        case "/stream": {
          response.writeHead(200, { "content-type": "text/event-stream", "request-id": "req_1", "set-cookie": ["a=1", "b=2"] })
          response.write("event: one\ndata: 1\n\n")
          setTimeout(() => response.end("event: two\ndata: 2\n\n"), 20)
          return
        }
        case "/error":
          response.writeHead(429, { "content-type": "application/json", "retry-after": "3" })
          return response.end(JSON.stringify({ type: "error", error: { type: "rate_limit_error", message: "slow down" } }))
        case "/empty":
          response.writeHead(204)
          return response.end()
        case "/moved":
          response.writeHead(307, { location: "/stream" })
          return response.end()
        case "/hang":
          response.writeHead(200, { "content-type": "text/event-stream" })
          response.write("data: first\n\n")
          response.on("close", () => aborted++)
          return
        default:
          response.writeHead(404)
          return response.end("not here")
      }
    })
  })
  const fetchViaUndici = makeFetch(undici, {})

  beforeAll(async () => {
    base = await listen(server)
  })
  afterAll(async () => {
    server.closeAllConnections()
    await close(server)
  })

  it("sends the method, headers and body, and streams the answer back chunk by chunk", async () => {
    const response = await fetchViaUndici(`${base}/stream`, {
      method: "post",
      headers: { "content-type": "application/json", "x-api-key": "sk-test", "anthropic-version": "2023-06-01" },
      body: JSON.stringify({ hello: "world" })
    })
    expect(response.status).toBe(200)
    expect(response.ok).toBe(true)
    expect(response.headers.get("request-id")).toBe("req_1")
    expect(response.headers.getSetCookie()).toEqual(["a=1", "b=2"])
    const { text, chunks } = await readAll(response)
    expect(text).toBe("event: one\ndata: 1\n\nevent: two\ndata: 2\n\n")
    expect(chunks).toBeGreaterThanOrEqual(2)
    const request = seen.at(-1)
    expect(request?.method).toBe("POST")
    expect(request?.headers["x-api-key"]).toBe("sk-test")
    expect(request?.headers["anthropic-version"]).toBe("2023-06-01")
    expect(request?.headers["accept-encoding"]).toBeUndefined()
    expect(JSON.parse(request?.body ?? "")).toEqual({ hello: "world" })
  })

  it("hands error statuses and their bodies to the SDK as fetch does", async () => {
    const response = await fetchViaUndici(new URL(`${base}/error`), { method: "POST", headers: new Headers({ accept: "application/json" }), body: "{}" })
    expect(response.status).toBe(429)
    expect(response.ok).toBe(false)
    expect(response.headers.get("retry-after")).toBe("3")
    expect(await response.json()).toEqual({ type: "error", error: { type: "rate_limit_error", message: "slow down" } })
  })

  it("gives no body for 204 and HEAD, as a Response must", async () => {
    const empty = await fetchViaUndici(`${base}/empty`, { method: "DELETE" })
    expect(empty.status).toBe(204)
    expect(empty.body).toBeNull()
    const head = await fetchViaUndici(`${base}/stream`, { method: "HEAD" })
    expect(head.status).toBe(200)
    expect(head.body).toBeNull()
  })

  it("follows redirects, keeping a 307's method and body", async () => {
    const before = seen.length
    const response = await fetchViaUndici(`${base}/moved`, { method: "POST", body: "again" })
    expect(response.status).toBe(200)
    expect((await readAll(response)).text).toContain("event: two")
    expect(seen.slice(before).map((request) => `${request.method} ${request.url} ${request.body}`)).toEqual(["POST /moved again", "POST /stream again"])
  })

  it("ends the request and its body when the signal is aborted mid-answer", async () => {
    const controller = new AbortController()
    const response = await fetchViaUndici(`${base}/hang`, { method: "POST", body: "{}", signal: controller.signal })
    const reader = response.body?.getReader()
    const first = await reader?.read()
    expect(new TextDecoder().decode(first?.value)).toBe("data: first\n\n")
    const abortedBefore = aborted
    controller.abort()
    await expect(reader?.read()).rejects.toThrow()
    for (let i = 0; i < 100 && aborted === abortedBefore; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    expect(aborted).toBe(abortedBefore + 1)
  })

  it("rejects when the server cannot be reached (the SDK reports a connection error)", async () => {
    const unused = http.createServer()
    const url = await listen(unused)
    await close(unused)
    await expect(fetchViaUndici(`${url}/v1/messages`, { method: "POST", body: "{}" })).rejects.toThrow()
  })

  it("leaves a streamed body to the global fetch", async () => {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("streamed"))
        controller.close()
      }
    })
    const response = await fetchViaUndici(`${base}/stream`, { method: "POST", body, duplex: "half" } as RequestInit)
    expect(response.status).toBe(200)
    expect(seen.at(-1)?.body).toBe("streamed")
    await readAll(response)
  })

  it("goes through HTTP(S)_PROXY when NODE_USE_ENV_PROXY=1, as Node's fetch", async () => {
    const { proxy, seen: tunnels } = makeForwardProxy("forward")
    const proxyUrl = await listen(proxy)
    const saved = { http: process.env["HTTP_PROXY"], no: process.env["NO_PROXY"] }
    process.env["HTTP_PROXY"] = proxyUrl
    delete process.env["NO_PROXY"]
    try {
      const viaProxy = makeFetch(undici, { NODE_USE_ENV_PROXY: "1" })
      const response = await viaProxy(`${base}/stream`, { method: "POST", body: "{}" })
      expect((await readAll(response)).text).toContain("event: two")
      expect(tunnels).toEqual([`${base}/stream`])
    } finally {
      if (saved.http === undefined) delete process.env["HTTP_PROXY"]
      else process.env["HTTP_PROXY"] = saved.http
      if (saved.no !== undefined) process.env["NO_PROXY"] = saved.no
      proxy.closeAllConnections()
      await close(proxy)
    }
  })
})
