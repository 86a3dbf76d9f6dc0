/**
 * The floor of the decided stack for bench/gateway-throughput.ts: what
 * bench/proxy-floor.ts does per non-streaming turn, written the way the
 * gateway must be written (effect/http on @effect/platform-node for the HTTP
 * in and out, the Anthropic SDK over the gateway's own undici transport for
 * the model call, Effect for the turn), and nothing else: no sessions, no
 * history, no validation, no auth. Each POST /v1/chat/completions is read as
 * JSON, the one fixed Anthropic body (the gateway's own, captured by the
 * bench) is sent through `messages.create` with stream:true and its events
 * read to the end, the user's and the assistant's lines are appended to the
 * `user`'s transcript (kept open) and the assistant's line is made durable
 * with fdatasync, then a minimal chat.completion goes back. It runs as its
 * own process, as the gateway does.
 *
 *   node bench/stack-floor.ts <fakeUrl> <bodyFile> <dir>   (prints its URL on stdout)
 */
import Anthropic from "@anthropic-ai/sdk"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Schema } from "effect"
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import * as fs from "node:fs"
import { createServer } from "node:http"
import { transcriptFiles } from "./floor-transcripts.ts"
import { importUndici, makeFetch } from "../src/provider/UndiciFetch.ts"

const [fakeUrl = "", bodyFile = "", dir = ""] = process.argv.slice(2)

class FloorError extends Schema.TaggedError<FloorError>()("FloorError", { message: Schema.String }) {}

const TextBlocks = Schema.Array(Schema.Struct({ type: Schema.Literal("text"), text: Schema.String }))
const UpstreamBody = Schema.Struct({
  model: Schema.String,
  max_tokens: Schema.Number,
  system: Schema.optional(Schema.Union([Schema.String, TextBlocks])),
  messages: Schema.Array(Schema.Struct({ role: Schema.Literals(["user", "assistant"]), content: Schema.Union([Schema.String, TextBlocks]) }))
})
const upstreamBody = Schema.decodeUnknownSync(Schema.fromJsonString(UpstreamBody))(fs.readFileSync(bodyFile, "utf8"))
const textBlocks = (content: string | typeof TextBlocks.Type) =>
  typeof content === "string" ? content : content.map((block): Anthropic.TextBlockParam => ({ type: "text", text: block.text }))
const request: Anthropic.MessageCreateParamsStreaming = {
  model: upstreamBody.model,
  max_tokens: upstreamBody.max_tokens,
  ...(upstreamBody.system !== undefined ? { system: textBlocks(upstreamBody.system) } : {}),
  messages: upstreamBody.messages.map((message) => ({ role: message.role, content: textBlocks(message.content) })),
  stream: true
}
const ChatBody = Schema.Struct({ user: Schema.optional(Schema.String) })

const client = new Anthropic({ apiKey: "sk-bench", baseURL: fakeUrl, fetch: makeFetch(await importUndici()), maxRetries: 0 })
const transcriptOf = transcriptFiles(dir)

const callModel = Effect.tryPromise({
  try: async (signal) => {
    const stream = await client.messages.create(request, { signal })
    let text = ""
    for await (const event of stream) {
      if (event.type === "content_block_delta" && event.delta.type === "text_delta") text += event.delta.text
    }
    return text
  },
  catch: (error) => new FloorError({ message: String(error) })
})

const datasync = (fd: number) =>
  Effect.callback<void, FloorError>((resume) => {
    fs.fdatasync(fd, (error) => resume(error === null ? Effect.void : Effect.fail(new FloorError({ message: error.message }))))
  })

const turn = Effect.gen(function*() {
  const body = yield* HttpServerRequest.schemaBodyJson(ChatBody)
  const fd = transcriptOf(body.user ?? "anonymous")
  fs.writeSync(fd, `${JSON.stringify({ type: "message", message: { role: "user", content: body } })}\n`)
  const text = yield* callModel
  fs.writeSync(fd, `${JSON.stringify({ type: "message", message: { role: "assistant", content: text } })}\n`)
  yield* datasync(fd)
  return HttpServerResponse.jsonUnsafe({ id: "chatcmpl-floor", object: "chat.completion", choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }] })
}).pipe(Effect.catch((error) => Effect.succeed(HttpServerResponse.text(String(error), { status: 500 }))))

const announce = Effect.gen(function*() {
  const server = yield* HttpServer.HttpServer
  if (server.address._tag !== "UnixPathAddress") console.log(`http://127.0.0.1:${server.address.port}`)
})

const routes = HttpRouter.serve(HttpRouter.add("POST", "/v1/chat/completions", turn), { disableLogger: true, disableListenLog: true })
const main = Layer.mergeAll(routes, Layer.effectDiscard(announce)).pipe(Layer.provide(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })))

NodeRuntime.runMain(Layer.launch(main))
