/**
 * A streaming Anthropic Messages fake for the WebSocket bench, in its own
 * process. Every POST /v1/messages with `stream: true` gets the real SSE
 * sequence (message_start, content_block_start, ping, N text deltas,
 * content_block_stop, message_delta, message_stop) with `delayMs` between
 * text deltas. Each delta's text is one word, `t<ms> `, where <ms> is
 * performance.timeOrigin + performance.now() taken just before the write:
 * a client on the same machine subtracts it from its own clock to get the
 * event's latency. test/support/FakeAnthropic.ts cannot do this: its reply
 * text is fixed before the stream starts.
 *
 *   node bench/gateway-ws-fake.ts <words> <delayMs>
 * stdout, first line: the URL. stdin "count" -> {"gateway":n,"baseline":m}
 * (requests with an `x-bench-baseline` header count as baseline).
 * Runs until SIGTERM or stdin closes.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import * as readline from "node:readline"

const words = Number(process.argv[2] ?? "10")
const delayMs = Number(process.argv[3] ?? "50")
let gateway = 0
let baseline = 0
let ids = 0

const stamp = (): string => (performance.timeOrigin + performance.now()).toFixed(3)

const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`

const stream = (req: IncomingMessage, res: ServerResponse, body: unknown) => {
  const model = typeof body === "object" && body !== null && "model" in body && typeof body.model === "string" ? body.model : "claude"
  const id = ++ids
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", "request-id": `req_ws_${id}` })
  res.write(
    sse("message_start", {
      type: "message_start",
      message: { id: `msg_ws_${id}`, type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 10, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 } }
    }) +
      sse("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }) +
      sse("ping", { type: "ping" })
  )
  let sent = 0
  let timer: NodeJS.Timeout | undefined
  const next = () => {
    if (res.destroyed) return
    sent++
    const delta = sse("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: `t${stamp()} ` } })
    if (sent < words) {
      res.write(delta)
      timer = setTimeout(next, delayMs)
      return
    }
    // The last word and the end of the message leave together, so a final's
    // latency is measured from the last word's stamp.
    res.end(
      delta +
        sse("content_block_stop", { type: "content_block_stop", index: 0 }) +
        sse("message_delta", { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: words * 6 } }) +
        sse("message_stop", { type: "message_stop" })
    )
  }
  req.socket.once("close", () => clearTimeout(timer))
  timer = setTimeout(next, delayMs)
}

const server = createServer((req, res) => {
  const chunks: Array<Buffer> = []
  req.on("data", (chunk: Buffer) => chunks.push(chunk))
  req.on("end", () => {
    if (req.method !== "POST" || (req.url ?? "").split("?")[0] !== "/v1/messages") {
      res.writeHead(404, { "content-type": "application/json" })
      res.end(JSON.stringify({ type: "error", error: { type: "not_found_error", message: `Not found: ${req.method} ${req.url}` } }))
      return
    }
    if (req.headers["x-bench-baseline"] === undefined) gateway++
    else baseline++
    let body: unknown
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"))
    } catch {
      body = undefined
    }
    if (typeof body !== "object" || body === null || !("stream" in body) || body.stream !== true) {
      res.writeHead(400, { "content-type": "application/json" })
      res.end(JSON.stringify({ type: "error", error: { type: "invalid_request_error", message: "this fake only streams" } }))
      return
    }
    stream(req, res, body)
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, "127.0.0.1", () => {
  const address: AddressInfo | string | null = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  process.stdout.write(`http://127.0.0.1:${port}\n`)
})

const stop = () => {
  server.closeAllConnections()
  server.close(() => process.exit(0))
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
const lines = readline.createInterface({ input: process.stdin })
lines.on("line", (line) => {
  if (line.trim() === "count") process.stdout.write(`${JSON.stringify({ gateway, baseline })}\n`)
  else process.stdout.write(`${JSON.stringify({ error: `unknown command ${JSON.stringify(line.trim())}` })}\n`)
})
lines.on("close", stop)
