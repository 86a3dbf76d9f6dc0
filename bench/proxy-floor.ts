/**
 * The floor of bench/gateway-throughput.ts: the least a gateway can do per
 * non-streaming turn, written with nothing but node:http and node:fs. Each
 * POST /v1/chat/completions is read and parsed, the one fixed Anthropic body
 * (the gateway's own, captured by the bench) is sent to the fake with
 * stream:true and its SSE read to the end and parsed, the user's and the
 * assistant's lines are appended to the `user`'s transcript file (kept open)
 * and the assistant's line is made durable with fdatasync, as the gateway
 * does, before a minimal chat.completion goes back. No sessions, no history,
 * no validation, no auth: what is left is the HTTP in and out and the disk,
 * which no gateway can skip. It runs as its own process, as the gateway does.
 *
 *   node bench/proxy-floor.ts <fakeUrl> <bodyFile> <dir>   (prints its URL on stdout)
 */
import * as fs from "node:fs"
import * as http from "node:http"
import { transcriptFiles } from "./floor-transcripts.ts"

const [fakeUrl = "", bodyFile = "", dir = ""] = process.argv.slice(2)
const upstreamBody = fs.readFileSync(bodyFile)
const upstream = new URL("/v1/messages", fakeUrl)
const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 })
const transcriptOf = transcriptFiles(dir)

const readAll = (stream: http.IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    stream.on("data", (chunk: Buffer) => chunks.push(chunk))
    stream.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    stream.on("error", reject)
  })

const callModel = (): Promise<string> =>
  new Promise((resolve, reject) => {
    const req = http.request(upstream, {
      method: "POST",
      agent,
      headers: { "content-type": "application/json", "x-api-key": "sk-bench", "anthropic-version": "2023-06-01", "content-length": upstreamBody.length }
    }, (res) => {
      readAll(res).then((sse) => {
        let text = ""
        for (const line of sse.split("\n")) {
          if (!line.startsWith("data: ")) continue
          const event: unknown = JSON.parse(line.slice(6))
          if (typeof event === "object" && event !== null && "delta" in event && typeof event.delta === "object" && event.delta !== null && "text" in event.delta && typeof event.delta.text === "string") text += event.delta.text
        }
        resolve(text)
      }, reject)
    })
    req.on("error", reject)
    req.end(upstreamBody)
  })

const server = http.createServer((req, res) => {
  readAll(req).then(async (raw) => {
    const body: unknown = JSON.parse(raw)
    const user = typeof body === "object" && body !== null && "user" in body && typeof body.user === "string" ? body.user : "anonymous"
    const fd = transcriptOf(user)
    fs.writeSync(fd, `${JSON.stringify({ type: "message", message: { role: "user", content: raw } })}\n`)
    const text = await callModel()
    fs.writeSync(fd, `${JSON.stringify({ type: "message", message: { role: "assistant", content: text } })}\n`)
    await new Promise<void>((resolve, reject) => fs.fdatasync(fd, (error) => error === null ? resolve() : reject(error)))
    const answer = JSON.stringify({ id: "chatcmpl-floor", object: "chat.completion", choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }] })
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(answer) })
    res.end(answer)
  }).catch((error: unknown) => {
    res.writeHead(500)
    res.end(String(error))
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, "127.0.0.1", () => {
  const address = server.address()
  if (address !== null && typeof address === "object") console.log(`http://127.0.0.1:${address.port}`)
})
const stop = () => server.close(() => process.exit(0))
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
