/**
 * POST /v1/responses against the real gateway process, with the official
 * `openai` client (responses.create, responses.stream, finalResponse) and
 * plain fetch where the client would hide the wire, over the
 * protocol-faithful fake Anthropic.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import OpenAI from "openai"
import { type FakeAnthropicHandle, type RecordedAnthropicRequest, lastRequestOf, startFakeAnthropic, systemText, userTexts } from "../../support/FakeAnthropic.ts"
import { type StartedGateway, startGateway } from "../../support/Gateway.ts"
import { makePdf } from "../../support/Pdf.ts"

let fake: FakeAnthropicHandle
let gateway: StartedGateway
let client: OpenAI

beforeAll(async () => {
  fake = await startFakeAnthropic()
  gateway = await startGateway({
    anthropicUrl: fake.url,
    config: {
      gateway: { http: { endpoints: { responses: { enabled: true } } } },
      // An allowlist with an alias, for the backend model header.
      agents: {
        defaults: { models: { "anthropic/claude-sonnet-5-5": {}, "anthropic/claude-haiku-9": { alias: "fast" } } },
        // A second agent, whose session a session-key header can name.
        list: [{ id: "main", default: true }, { id: "ops" }]
      }
    }
  })
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: gateway.token, maxRetries: 0 })
})

afterAll(async () => {
  await gateway?.stop()
  await fake?.close()
})

const lastRequest = (): RecordedAnthropicRequest => lastRequestOf(fake)


const post = (body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${gateway.url}/v1/responses`, {
    method: "POST",
    headers: { authorization: `Bearer ${gateway.token}`, "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body)
  })

const expectError = async (response: Response, status: number, param?: string | null) => {
  assert.strictEqual(response.status, status)
  const json: unknown = await response.json()
  const error = typeof json === "object" && json !== null && "error" in json && typeof json.error === "object" && json.error !== null
    ? Object.fromEntries(Object.entries(json.error))
    : undefined
  assert.isObject(error, JSON.stringify(json))
  assert.isString(error?.message)
  assert.isString(error?.type)
  if (param !== undefined) assert.strictEqual(error?.param, param, JSON.stringify(json))
  return error ?? {}
}

/** The SSE frames of a raw response: each `event:` line and its parsed data, then whether [DONE] closed it. */
const readFrames = async (response: Response) => {
  const text = await response.text()
  const blocks = text.split("\n\n").filter((block) => block.trim() !== "")
  const done = blocks.at(-1) === "data: [DONE]"
  const frames = (done ? blocks.slice(0, -1) : blocks).map((block) => {
    const lines = block.split("\n")
    const event = lines.find((line) => line.startsWith("event: "))?.slice(7)
    const data: { type: string; sequence_number: number; [key: string]: unknown } = JSON.parse(lines.find((line) => line.startsWith("data: "))?.slice(6) ?? "null")
    return { event, data }
  })
  return { frames, done }
}

const weatherTool = {
  type: "function" as const,
  name: "get_weather",
  description: "Weather for a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  strict: false
}

const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

describe("responses", () => {
  it("answers a non-streaming request with a ResponseResource the SDK reads", async () => {
    const response = await client.responses.create({ model: "beamclaw", input: "hello there" })
    assert.strictEqual(response.object, "response")
    assert.match(response.id, /^resp_/)
    assert.strictEqual(response.status, "completed")
    assert.strictEqual(response.model, "beamclaw")
    assert.strictEqual(response.output.length, 1)
    const item = response.output[0]
    assert.strictEqual(item?.type, "message")
    if (item?.type !== "message") throw new Error("expected a message item")
    assert.match(item.id, /^msg_/)
    assert.strictEqual(item.role, "assistant")
    assert.strictEqual(item.status, "completed")
    assert.deepStrictEqual(item.content.map((part) => part.type), ["output_text"])
    assert.strictEqual(response.output_text, "echo: hello there")
    assert.isAbove(response.usage?.input_tokens ?? 0, 0)
    assert.isAbove(response.usage?.output_tokens ?? 0, 0)
    assert.strictEqual(response.usage?.total_tokens, (response.usage?.input_tokens ?? 0) + (response.usage?.output_tokens ?? 0))
    // Without `user` or a session header every request is a fresh session.
    assert.strictEqual(lastRequest().body?.messages.length, 1)
  })

  it("streams the OpenResponses event sequence, which responses.stream() accumulates", async () => {
    fake.push({ kind: "message", content: [{ type: "text", text: "one two three four" }] })
    const stream = client.responses.stream({ model: "openclaw/default", input: "count" })
    const events: Array<OpenAI.Responses.ResponseStreamEvent> = []
    for await (const event of stream) events.push(event)
    const final = await stream.finalResponse()
    assert.deepStrictEqual(
      events.map((event) => event.type).filter((type) => type !== "response.output_text.delta"),
      [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed"
      ]
    )
    events.forEach((event, i) => assert.strictEqual(event.sequence_number, i))
    const deltas = events.flatMap((event) => event.type === "response.output_text.delta" ? [event.delta] : [])
    assert.isAtLeast(deltas.length, 2, "the answer arrives in several deltas")
    assert.strictEqual(deltas.join(""), "one two three four")
    assert.strictEqual(final.status, "completed")
    assert.strictEqual(final.output_text, "one two three four")
    assert.isAbove(final.usage?.total_tokens ?? 0, 0)
    const completed = events.at(-1)
    assert.strictEqual(completed?.type === "response.completed" ? completed.response.id : undefined, events[0]?.type === "response.created" ? events[0].response.id : "x")
  })

  it("writes each event as an `event:` line and a `data:` line, ending with data: [DONE]", async () => {
    const response = await post({ model: "beamclaw", input: "raw", stream: true })
    assert.strictEqual(response.status, 200)
    assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/)
    const { frames, done } = await readFrames(response)
    assert.isTrue(done)
    for (const frame of frames) assert.strictEqual(frame.event, frame.data.type)
    assert.strictEqual(frames.at(-1)?.event, "response.completed")
    assert.strictEqual(frames.filter((f) => f.event === "response.output_text.delta").map((f) => f.data.delta).join(""), "echo: raw")
  })

  it("iterates the raw event stream of responses.create({stream: true})", async () => {
    const stream = await client.responses.create({ model: "beamclaw", input: [{ role: "user", content: "via create" }], stream: true })
    const types: Array<string> = []
    let text = ""
    for await (const event of stream) {
      types.push(event.type)
      if (event.type === "response.output_text.delta") text += event.delta
    }
    assert.strictEqual(types[0], "response.created")
    assert.strictEqual(types.at(-1), "response.completed")
    assert.strictEqual(text, "echo: via create")
  })

  it("folds instructions and system/developer items into the system prompt, earlier items into history", async () => {
    await client.responses.create({
      model: "beamclaw",
      instructions: "Answer in French.",
      input: [
        { type: "message", role: "developer", content: "Be brief." },
        { type: "message", role: "user", content: [{ type: "input_text", text: "My name is Ada." }] },
        { type: "message", role: "assistant", content: "Nice to meet you, Ada." },
        { role: "user", content: "What is my name?" }
      ]
    })
    const system = systemText(lastRequest())
    assert.include(system, "Answer in French.")
    assert.include(system, "Be brief.")
    const [text] = userTexts(lastRequest())
    assert.notInclude(text, "Answer in French.")
    assert.include(text, "[Chat messages since your last reply - for context]\nUser: My name is Ada.\nAssistant: Nice to meet you, Ada.")
    assert.include(text, "[Current message - respond to this]\nUser: What is my name?")
  })

  it("passes max_output_tokens to the model call and reports a truncated answer as incomplete", async () => {
    fake.push({ kind: "message", content: [{ type: "text", text: "cut short" }], stopReason: "max_tokens" })
    const response = await client.responses.create({ model: "beamclaw", input: "long please", max_output_tokens: 77 })
    assert.strictEqual(lastRequest().body?.max_tokens, 77)
    assert.strictEqual(response.status, "incomplete")
    assert.strictEqual(response.incomplete_details?.reason, "max_output_tokens")
    assert.strictEqual(response.output_text, "cut short")
  })

  it("passes a base64 input_image to the model, in either spelling", async () => {
    await post({
      model: "beamclaw",
      input: [{ type: "message", role: "user", content: [{ type: "input_image", source: { type: "base64", media_type: "image/png", data: png } }] }]
    })
    const blocks = lastRequest().body?.messages[0]?.content
    assert.isTrue(Array.isArray(blocks) && blocks.some((b) => b.type === "image"))
    assert.isTrue(Array.isArray(blocks) && blocks.some((b) => b.type === "text" && b.text === "User sent image(s) with no text."))
    await client.responses.create({
      model: "beamclaw",
      input: [{ role: "user", content: [{ type: "input_text", text: "what is this?" }, { type: "input_image", image_url: `data:image/png;base64,${png}`, detail: "auto" }] }]
    })
    const second = lastRequest().body?.messages[0]?.content
    assert.isTrue(Array.isArray(second) && second.some((b) => b.type === "image"))
  })
})

describe("sessions", () => {
  it("gives input_file text to the model in the system prompt, wrapped as untrusted content, and keeps it out of the history", async () => {
    const notes = "# Notes\nThe launch code is 7-4-1."
    const response = await client.responses.create({
      model: "beamclaw",
      user: "files-1",
      input: [{ role: "user", content: [{ type: "input_text", text: "what is in my notes?" }, { type: "input_file", filename: "notes.md", file_data: `data:text/markdown;base64,${Buffer.from(notes).toString("base64")}` }] }]
    })
    assert.strictEqual(response.status, "completed")
    const system = systemText(lastRequest())
    const block = /<<<EXTERNAL_UNTRUSTED_CONTENT id="([0-9a-f]{16})">>>\nSource: External\nFile: notes\.md \(text\/markdown\)\n---\n([\s\S]*?)\n<<<END_EXTERNAL_UNTRUSTED_CONTENT id="\1">>>/.exec(system)
    assert.isNotNull(block, system)
    assert.strictEqual(block?.[2], notes)
    assert.notInclude(JSON.stringify(lastRequest().body?.messages), "launch code", "the file is not in the messages")
    // The session's transcript has the question, not the file.
    const sessions = path.join(gateway.home, "agents", "main", "sessions")
    const transcripts = await Promise.all((await fs.readdir(sessions)).filter((name) => name.endsWith(".jsonl")).map((name) => fs.readFile(path.join(sessions, name), "utf8")))
    assert.isTrue(transcripts.some((text) => text.includes("what is in my notes?")))
    assert.isFalse(transcripts.some((text) => text.includes("launch code")))
  })

  it("reads the text of a PDF input_file, its first files.pdf.maxPages pages (4 by default)", async () => {
    const pages = Array.from({ length: 6 }, (_, i) => [`Page ${i + 1} heading`, `Body of page ${i + 1} (with parentheses), long enough to be read as text.`])
    const response = await client.responses.create({
      model: "beamclaw",
      input: [{ role: "user", content: [{ type: "input_text", text: "summarise the report" }, { type: "input_file", filename: "report.pdf", file_data: `data:application/pdf;base64,${makePdf(pages).toString("base64")}` }] }]
    })
    assert.strictEqual(response.status, "completed")
    const system = systemText(lastRequest())
    assert.include(system, "File: report.pdf (application/pdf)")
    assert.include(system, "Page 1 heading\nBody of page 1 (with parentheses), long enough to be read as text.")
    assert.notInclude(system, "little or no text")
    assert.include(system, "Body of page 4")
    assert.notInclude(system, "Page 5 heading")
    assert.include(system, "the PDF has 6 pages; the first 4 are read")
    assert.notInclude(JSON.stringify(lastRequest().body?.messages), "Page 1 heading", "the PDF is not in the messages")

    // A PDF without text (a scan): the model is told, rather than shown an empty file.
    await client.responses.create({
      model: "beamclaw",
      input: [{ role: "user", content: [{ type: "input_text", text: "read the scan" }, { type: "input_file", filename: "scan.pdf", file_data: `data:application/pdf;base64,${makePdf([[]]).toString("base64")}` }] }]
    })
    assert.include(systemText(lastRequest()), "File: scan.pdf (application/pdf)\n---\n[the PDF has little or no text (a scan?); BeamClaw does not render its pages as images]")
  })

  it("reads input_file text in its declared charset, by its byte-order mark, or as Windows-1252 when it is not UTF-8", async () => {
    const send = async (source: Record<string, unknown>) => {
      const response = await post({ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_text", text: "read" }, { type: "input_file", source: { type: "base64", ...source } }] }] })
      assert.strictEqual(response.status, 200, await response.clone().text())
      return systemText(lastRequest())
    }
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from("naïve façade", "utf16le")]).toString("base64")
    assert.include(await send({ media_type: "text/plain", data: utf16, filename: "a.txt" }), "naïve façade")
    const latin = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0x80]).toString("base64")
    assert.include(await send({ media_type: "text/plain", data: latin }), "café €")
    assert.include(await send({ media_type: "text/csv; charset=utf-16le", data: Buffer.from("a;b", "utf16le").toString("base64") }), "a;b")
    // No media type: the file name's extension says what it is.
    assert.include(await send({ data: Buffer.from("{\"k\":1}").toString("base64"), filename: "data.json" }), "File: data.json (application/json)")
  })

  it("keeps a conversation per `user` in agent:<id>:openresponses-user:<user>", async () => {
    const user = `alice-${crypto.randomUUID()}`
    const first = await post({ model: "beamclaw", user, input: "first" })
    assert.strictEqual(first.status, 200)
    assert.strictEqual(first.headers.get("x-beamclaw-session-key"), `agent:main:openresponses-user:${user}`)
    await client.responses.create({ model: "beamclaw", user, input: "second" })
    assert.deepStrictEqual(userTexts(lastRequest()), ["first", "second"])
    const other = await post({ model: "beamclaw", input: "other" })
    assert.match(other.headers.get("x-beamclaw-session-key") ?? "", /^agent:main:openresponses:[0-9a-f-]{36}$/)
    assert.deepStrictEqual(userTexts(lastRequest()), ["other"])
  })

  it("routes by the session-key and agent-id headers as the chat endpoint does", async () => {
    const key = `thread-${crypto.randomUUID()}`
    assert.strictEqual((await post({ model: "beamclaw", input: "uno" }, { "x-openclaw-session-key": key })).status, 200)
    assert.strictEqual((await post({ model: "beamclaw", input: "dos" }, { "x-beamclaw-session-key": key })).status, 200)
    assert.deepStrictEqual(userTexts(lastRequest()), ["uno", "dos"])
    const reserved = await expectError(await post({ model: "beamclaw", input: "x" }, { "x-openclaw-session-key": "cron:nightly" }), 400)
    assert.strictEqual(reserved.code, "reserved_session_key")
    const ghost = await expectError(await post({ model: "beamclaw", input: "x" }, { "x-beamclaw-agent-id": "ghost" }), 400)
    assert.strictEqual(ghost.code, "agent_not_found")
    const model = await client.responses.create({ model: "gpt-4o", input: "x" }).catch((e: unknown) => e)
    assert.instanceOf(model, OpenAI.BadRequestError)
  })

  it("cancels the model call when the client leaves mid-stream, and the session carries on", async () => {
    const user = `dave-${crypto.randomUUID()}`
    fake.push({ kind: "message", content: [{ type: "text", text: "a b c d e f g h i j k l m n o p" }], delayMs: 150 })
    const before = fake.requests.length
    const controller = new AbortController()
    const stream = await client.responses.create({ model: "beamclaw", user, input: "long story", stream: true }, { signal: controller.signal })
    let seen = ""
    try {
      for await (const event of stream) {
        if (event.type === "response.output_text.delta") seen += event.delta
        if (seen.length > 0) controller.abort()
      }
    } catch (error) {
      assert.instanceOf(error, Error)
    }
    assert.isAbove(seen.length, 0)
    const upstream = fake.requests[before]
    assert.isDefined(upstream)
    assert.strictEqual(await upstream?.closed, "aborted")
    // The transcript is still one the API accepts: the fake validates the next request.
    const next = await client.responses.create({ model: "beamclaw", user, input: "still there?" })
    assert.strictEqual(next.output_text, "echo: still there?")
    assert.strictEqual(userTexts(lastRequest())[0], "long story")
    assert.strictEqual(userTexts(lastRequest()).at(-1), "still there?")
  })
})

/** The `id` of a ResponseResource read from a raw response. */
const responseId = async (response: Response): Promise<string> => {
  const json: unknown = await response.json()
  const id = typeof json === "object" && json !== null && "id" in json ? json.id : undefined
  assert.isString(id, JSON.stringify(json))
  return String(id)
}

describe("previous_response_id", () => {
  it("continues the earlier response's session with only the new input (official SDK)", async () => {
    const first = await client.responses.create({ model: "beamclaw", input: "My name is Ada." })
    assert.deepStrictEqual(userTexts(lastRequest()), ["My name is Ada."])
    const second = await client.responses.create({ model: "beamclaw", previous_response_id: first.id, input: "What is my name?" })
    // The model sees the first turn's history, from the session's own transcript.
    const messages = lastRequest().body?.messages ?? []
    assert.deepStrictEqual(userTexts(lastRequest()), ["My name is Ada.", "What is my name?"])
    assert.isTrue(messages.some((m) => m.role === "assistant" && JSON.stringify(m.content).includes("echo: My name is Ada.")))
    assert.strictEqual(second.previous_response_id, first.id)
    assert.strictEqual(second.output_text, "echo: What is my name?")
    // A chain: the second response can be continued in turn, with a stream this time.
    const stream = client.responses.stream({ model: "beamclaw", previous_response_id: second.id, input: "And again?" })
    const third = await stream.finalResponse()
    assert.strictEqual(third.previous_response_id, second.id)
    assert.deepStrictEqual(userTexts(lastRequest()), ["My name is Ada.", "What is my name?", "And again?"])
    // A streamed response is remembered as well.
    await client.responses.create({ model: "beamclaw", previous_response_id: third.id, input: "Fourth." })
    assert.strictEqual(userTexts(lastRequest()).length, 4)
  })

  it("takes a function_call_output alone after a client tool call, the way the SDK continues", async () => {
    fake.push({ kind: "message", content: [{ type: "tool_use", id: "toolu_chain", name: "get_weather", input: { city: "Oslo" } }] })
    const first = await client.responses.create({ model: "beamclaw", input: "Weather in Oslo?", tools: [weatherTool] })
    assert.deepStrictEqual(first.output.map((item) => item.type), ["function_call"])
    const second = await client.responses.create({
      model: "beamclaw",
      previous_response_id: first.id,
      tools: [weatherTool],
      input: [{ type: "function_call_output", call_id: "toolu_chain", output: "-3C and snow" }]
    })
    assert.strictEqual(second.status, "completed")
    // The session's own transcript holds the call, so the model gets a tool_result for it.
    const messages = lastRequest().body?.messages ?? []
    assert.isTrue(messages.some((m) => m.role === "assistant" && JSON.stringify(m.content).includes("toolu_chain")))
    assert.include(userTexts(lastRequest()).at(0) ?? "", "Weather in Oslo?")
  })

  it("names the continued session in the response headers", async () => {
    const first = await post({ model: "beamclaw", input: "header one" })
    const key = first.headers.get("x-beamclaw-session-key")
    assert.match(key ?? "", /^agent:main:openresponses:[0-9a-f-]{36}$/)
    const id = await responseId(first)
    const second = await post({ model: "beamclaw", input: "header two", previous_response_id: id })
    assert.strictEqual(second.headers.get("x-beamclaw-session-key"), key)
  })

  it("starts the session it would have without the field when the id is unknown or out of scope", async () => {
    const unknown = await client.responses.create({ model: "beamclaw", previous_response_id: "resp_never_issued", input: "unknown id" })
    assert.strictEqual(unknown.status, "completed")
    assert.strictEqual(unknown.previous_response_id, "resp_never_issued")
    assert.deepStrictEqual(userTexts(lastRequest()), ["unknown id"])

    // Another `user` than the response's: not its scope, so that user's own session.
    const owner = `owner-${crypto.randomUUID()}`
    const stranger = `stranger-${crypto.randomUUID()}`
    const owned = await client.responses.create({ model: "beamclaw", user: owner, input: "private" })
    const crossed = await post({ model: "beamclaw", user: stranger, previous_response_id: owned.id, input: "peek" })
    assert.strictEqual(crossed.headers.get("x-beamclaw-session-key"), `agent:main:openresponses-user:${stranger}`)
    assert.deepStrictEqual(userTexts(lastRequest()), ["peek"])
    // Without the `user` at all, also out of scope: a fresh session.
    const bare = await post({ model: "beamclaw", previous_response_id: owned.id, input: "no user" })
    assert.match(bare.headers.get("x-beamclaw-session-key") ?? "", /^agent:main:openresponses:[0-9a-f-]{36}$/)
    assert.deepStrictEqual(userTexts(lastRequest()), ["no user"])
    // The same user continues.
    await client.responses.create({ model: "beamclaw", user: owner, previous_response_id: owned.id, input: "mine" })
    assert.deepStrictEqual(userTexts(lastRequest()), ["private", "mine"])

    // A different session-key header than the response's: that header's session.
    const keyA = `thread-a-${crypto.randomUUID()}`
    const keyB = `thread-b-${crypto.randomUUID()}`
    const inA = await post({ model: "beamclaw", input: "in a" }, { "x-openclaw-session-key": keyA })
    const idA = await responseId(inA)
    await post({ model: "beamclaw", previous_response_id: idA, input: "in b" }, { "x-openclaw-session-key": keyB })
    assert.deepStrictEqual(userTexts(lastRequest()), ["in b"])
    const noHeader = await post({ model: "beamclaw", previous_response_id: idA, input: "no header" })
    assert.notStrictEqual(noHeader.headers.get("x-beamclaw-session-key"), inA.headers.get("x-beamclaw-session-key"))
    assert.deepStrictEqual(userTexts(lastRequest()), ["no header"])
  })

  it("gives a continuation no session the request itself would be refused", async () => {
    // The default agent selected implicitly may run in another agent's session named by the header.
    const key = `agent:ops:thread-${crypto.randomUUID()}`
    const first = await post({ model: "beamclaw", input: "in ops" }, { "x-openclaw-session-key": key })
    assert.strictEqual(first.headers.get("x-beamclaw-session-key"), key)
    const id = await responseId(first)
    // The same agent selected explicitly may not, and previous_response_id does not open it either.
    const explicit = { model: "beamclaw/main", input: "still ops?" }
    await expectError(await post(explicit, { "x-openclaw-session-key": key }), 400, "x-beamclaw-session-key")
    const before = fake.requests.length
    await expectError(await post({ ...explicit, previous_response_id: id }, { "x-openclaw-session-key": key }), 400, "x-beamclaw-session-key")
    assert.strictEqual(fake.requests.length, before, "no turn ran")
  })

  it("does not remember a response that failed", async () => {
    fake.push({ kind: "error", status: 400, type: "invalid_request_error", message: "nope" })
    const { frames } = await readFrames(await post({ model: "beamclaw", stream: true, input: "doomed" }))
    const failed = frames.find((frame) => frame.event === "response.failed")
    const response = failed?.data.response
    const id = typeof response === "object" && response !== null && "id" in response ? response.id : undefined
    assert.isString(id)
    await post({ model: "beamclaw", previous_response_id: id, input: "after failure" })
    assert.deepStrictEqual(userTexts(lastRequest()), ["after failure"])
  })

  it("refuses a previous_response_id that is not a string", async () => {
    await expectError(await post({ model: "beamclaw", input: "x", previous_response_id: 42 }), 400, "previous_response_id")
  })
})

describe("backend model header", () => {
  it("runs the turn on the allowed model x-openclaw-model names (an alias here), for that turn only", async () => {
    const user = `model-${crypto.randomUUID()}`
    const response = await client.responses.create({ model: "beamclaw", user, input: "fast one" }, { headers: { "x-openclaw-model": "fast" } })
    assert.strictEqual(response.output_text, "echo: fast one")
    assert.strictEqual(lastRequest().body?.model, "claude-haiku-9")
    await client.responses.create({ model: "beamclaw", user, input: "default one" })
    assert.strictEqual(lastRequest().body?.model, "claude-sonnet-5-5")
  })

  it("refuses a model outside agents.defaults.models with a 400 naming the header", async () => {
    const before = fake.requests.length
    const error = await expectError(await post({ model: "beamclaw", input: "x" }, { "x-beamclaw-model": "anthropic/claude-opus-9" }), 400, "x-beamclaw-model")
    assert.strictEqual(error.code, "model_not_allowed")
    assert.include(String(error.message), "anthropic/claude-haiku-9")
    const sdk = await client.responses.create({ model: "beamclaw", input: "x" }, { headers: { "x-openclaw-model": "openai/gpt-6" } }).catch((e: unknown) => e)
    assert.instanceOf(sdk, OpenAI.BadRequestError)
    assert.strictEqual(fake.requests.length, before)
  })
})

describe("cancellation", () => {
  it("cancels the model call when a non-streaming client goes away", async () => {
    fake.push({ kind: "hang" })
    const before = fake.requests.length
    const controller = new AbortController()
    const pending = fetch(`${gateway.url}/v1/responses`, {
      method: "POST",
      signal: controller.signal,
      headers: { authorization: `Bearer ${gateway.token}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "beamclaw", input: "wait for it" })
    }).catch((error: unknown) => error)
    while (fake.requests.length === before) await new Promise((resolve) => setTimeout(resolve, 10))
    controller.abort()
    assert.instanceOf(await pending, Error)
    const closed = await Promise.race([fake.requests[before]?.closed, new Promise((resolve) => setTimeout(() => resolve("still open"), 5000))])
    assert.strictEqual(closed, "aborted")
  })
})

describe("client tools", () => {
  it("streams parallel client calls as consecutive function_call items the SDK accumulates", async () => {
    fake.push({
      kind: "message",
      content: [
        { type: "text", text: "Both." },
        { type: "tool_use", id: "toolu_par_1", name: "get_weather", input: { city: "Bern" } },
        { type: "tool_use", id: "toolu_par_2", name: "get_time", input: { zone: "CET" } }
      ]
    })
    const timeTool = { type: "function" as const, name: "get_time", parameters: { type: "object", properties: { zone: { type: "string" } } }, strict: false }
    const stream = client.responses.stream({ model: "beamclaw", input: "Weather and time in Bern?", tools: [weatherTool, timeTool] })
    const events: Array<OpenAI.Responses.ResponseStreamEvent> = []
    for await (const event of stream) events.push(event)
    const final = await stream.finalResponse()
    events.forEach((event, i) => assert.strictEqual(event.sequence_number, i))
    assert.strictEqual(events.at(-1)?.type, "response.completed")
    assert.deepStrictEqual(final.output.map((item) => item.type), ["message", "function_call", "function_call"])
    assert.deepStrictEqual(final.output.flatMap((item) => item.type === "function_call" ? [[item.call_id, item.name, item.arguments]] : []), [
      ["toolu_par_1", "get_weather", "{\"city\":\"Bern\"}"],
      ["toolu_par_2", "get_time", "{\"zone\":\"CET\"}"]
    ])
    const added = events.flatMap((event) => event.type === "response.output_item.added" ? [event.output_index] : [])
    assert.deepStrictEqual(added, [0, 1, 2])
  })

  it("returns a function_call item, then continues with the client's function_call_output", async () => {
    fake.push({ kind: "message", content: [{ type: "text", text: "Let me check." }, { type: "tool_use", id: "toolu_weather_1", name: "get_weather", input: { city: "Paris" } }] })
    // One session for both requests, so the second also proves the first left a valid transcript.
    const user = `tools-${crypto.randomUUID()}`
    const first = await client.responses.create({ model: "beamclaw", user, input: "Weather in Paris?", tools: [weatherTool] })
    assert.isTrue((lastRequest().body?.tools ?? []).some((tool) => tool.name === "get_weather"))
    assert.strictEqual(first.status, "completed")
    assert.deepStrictEqual(first.output.map((item) => item.type), ["message", "function_call"])
    assert.strictEqual(first.output_text, "Let me check.")
    const call = first.output[1]
    if (call?.type !== "function_call") throw new Error("expected a function_call item")
    assert.strictEqual(call.call_id, "toolu_weather_1")
    assert.strictEqual(call.name, "get_weather")
    assert.strictEqual(call.status, "completed")
    assert.isString(call.id)
    assert.deepStrictEqual(JSON.parse(call.arguments), { city: "Paris" })

    // The client appends response.output to its input, then the result, as the docs say.
    const second = await client.responses.create({
      model: "beamclaw",
      user,
      tools: [weatherTool],
      input: [
        { role: "user", content: "Weather in Paris?" },
        ...first.output.flatMap((item) => item.type === "message" || item.type === "function_call" ? [item] : []),
        { type: "function_call_output", call_id: call.call_id, output: "18C and sunny" }
      ]
    })
    assert.strictEqual(second.status, "completed")
    const text = userTexts(lastRequest()).at(-1) ?? ""
    assert.include(text, "User: Weather in Paris?")
    assert.include(text, "Assistant: Let me check.\n[called get_weather({\"city\":\"Paris\"})]")
    assert.include(text, "[Current message - respond to this]\nTool:get_weather: 18C and sunny")
    assert.include(second.output_text, "Tool:get_weather: 18C and sunny")
  })

  it("takes a function_call_output alone as the continuation of a `user` session", async () => {
    fake.push({ kind: "message", content: [{ type: "tool_use", id: "toolu_alone", name: "get_weather", input: { city: "Rome" } }] })
    const user = `alone-${crypto.randomUUID()}`
    const first = await client.responses.create({ model: "beamclaw", user, input: "Weather in Rome?", tools: [weatherTool] })
    assert.deepStrictEqual(first.output.map((item) => item.type), ["function_call"])
    const second = await client.responses.create({ model: "beamclaw", user, input: [{ type: "function_call_output", call_id: "toolu_alone", output: "" }] })
    assert.strictEqual(second.status, "completed")
    // With no items before it, the result is the whole message, as in OpenClaw's prompt builder;
    // the fake accepted the request, so the session's transcript closed the call.
    assert.strictEqual(userTexts(lastRequest()).at(-1), "(no output)")
    assert.include(JSON.stringify(lastRequest().body?.messages), "toolu_alone")
  })

  it("streams a pinned tool call (OpenClaw's nested tool shape) as a function_call item with its arguments", async () => {
    fake.push({ kind: "message", content: [{ type: "text", text: "Checking." }, { type: "tool_use", id: "toolu_weather_2", name: "get_weather", input: { city: "Oslo" } }] })
    const response = await post({
      model: "beamclaw",
      input: "Weather in Oslo?",
      tools: [{ type: "function", function: { name: "get_weather", parameters: weatherTool.parameters } }],
      tool_choice: { type: "function", name: "get_weather" },
      stream: true
    })
    const { frames, done } = await readFrames(response)
    assert.isTrue(done)
    const types = frames.map((f) => f.data.type)
    assert.deepStrictEqual(types.slice(-5), [
      "response.output_item.added",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.completed"
    ])
    const added = frames.find((f) => f.data.type === "response.output_item.added" && JSON.stringify(f.data.item).includes("function_call"))
    assert.strictEqual(added?.data.output_index, 1, "the held commentary goes first, as a message item")
    const completed = frames.at(-1)?.data.response
    const output = typeof completed === "object" && completed !== null && "output" in completed && Array.isArray(completed.output) ? completed.output : []
    assert.strictEqual(output.length, 2)
    assert.deepStrictEqual(output.map((item: { type: string }) => item.type), ["message", "function_call"])
    assert.strictEqual(output[1]?.call_id, "toolu_weather_2")
    assert.deepStrictEqual(JSON.parse(output[1]?.arguments ?? "null"), { city: "Oslo" })
    assert.include(systemText(lastRequest()), "You must call the get_weather tool before responding.")
    assert.deepStrictEqual(lastRequest().body?.tool_choice, { type: "tool", name: "get_weather" }, "and forced on the model")
    assert.deepStrictEqual((lastRequest().body?.tools ?? []).filter((t) => t.name === "get_weather").length, 1)
  })

  it("accumulates a streamed function call in responses.stream().finalResponse()", async () => {
    fake.push({ kind: "message", content: [{ type: "tool_use", id: "toolu_weather_3", name: "get_weather", input: { city: "Lima" } }] })
    const stream = client.responses.stream({ model: "beamclaw", input: "Weather in Lima?", tools: [weatherTool], tool_choice: "required" })
    const argumentDeltas: Array<string> = []
    stream.on("response.function_call_arguments.delta", (event) => argumentDeltas.push(event.snapshot))
    const final = await stream.finalResponse()
    const call = final.output[0]
    if (call?.type !== "function_call") throw new Error(`expected a function_call item, got ${JSON.stringify(final.output)}`)
    assert.strictEqual(call.call_id, "toolu_weather_3")
    assert.deepStrictEqual(JSON.parse(call.arguments), { city: "Lima" })
    assert.deepStrictEqual(argumentDeltas, [call.arguments])
  })

  it("fails a required tool choice the agent did not honour: 502, or response.failed when streaming", async () => {
    fake.push({ kind: "message", content: [{ type: "text", text: "just talking" }] })
    fake.push({ kind: "message", content: [{ type: "text", text: "just talking" }] })
    const error = await expectError(await post({ model: "beamclaw", input: "just talk", tools: [weatherTool], tool_choice: "required" }), 502)
    assert.strictEqual(error.code, "tool_call_missing")
    const { frames, done } = await readFrames(await post({ model: "beamclaw", input: "just talk", tools: [weatherTool], tool_choice: "required", stream: true }))
    assert.isTrue(done)
    assert.strictEqual(frames.at(-1)?.data.type, "response.failed")
    assert.include(JSON.stringify(frames.at(-1)?.data), "tool_call_missing")
  })
})

describe("errors", () => {
  it("sends response.failed, then [DONE], when the provider fails mid-stream", async () => {
    fake.push({ kind: "error", status: 400, type: "invalid_request_error", message: "prompt is too long" })
    const stream = await client.responses.create({ model: "beamclaw", input: "doomed", stream: true })
    const events: Array<OpenAI.Responses.ResponseStreamEvent> = []
    for await (const event of stream) events.push(event)
    assert.strictEqual(events[0]?.type, "response.created")
    const last = events.at(-1)
    assert.strictEqual(last?.type, "response.failed")
    if (last?.type !== "response.failed") throw new Error("expected response.failed")
    assert.strictEqual(last.response.status, "failed")
    assert.include(last.response.error?.message ?? "", "prompt is too long")
  })

  it("keeps the partial message in response.failed when the provider fails after some text", async () => {
    fake.push({ kind: "streamError", type: "invalid_request_error", message: "went wrong", content: [{ type: "text", text: "partial words here" }] })
    const stream = client.responses.stream({ model: "beamclaw", input: "half" })
    let text = ""
    stream.on("response.output_text.delta", (event) => { text = event.snapshot })
    const final = await stream.finalResponse()
    assert.strictEqual(final.status, "failed")
    assert.include(final.error?.message ?? "", "went wrong")
    assert.isAbove(text.length, 0)
    const item = final.output[0]
    assert.strictEqual(item?.type === "message" ? item.status : undefined, "incomplete")
    assert.strictEqual(final.output_text, text)
  })

  it("refuses bad bodies with a 400 naming the field", async () => {
    const cases: ReadonlyArray<readonly [Record<string, unknown>, string]> = [
      [{ model: "beamclaw" }, "input"],
      [{ model: "beamclaw", input: 42 }, "input"],
      [{ model: "beamclaw", input: [] }, "input"],
      [{ model: "beamclaw", input: [{ type: "computer_call_output", call_id: "x" }] }, "input[0].type"],
      [{ model: "beamclaw", input: [{ type: "message", role: "wizard", content: "x" }] }, "input[0].role"],
      [{ model: "beamclaw", input: [{ type: "message", role: "user" }] }, "input[0].content"],
      [{ model: "beamclaw", input: [{ type: "message", role: "user", content: [{ type: "input_audio" }] }] }, "input[0].content[0].type"],
      [{ model: "beamclaw", input: [{ type: "message", role: "user", content: [{ type: "input_file", source: { type: "url", url: "http://127.0.0.1:9/a.txt" } }] }] }, "input[0].content[0].source.url"],
      [{ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_file", file_id: "file-123" }] }] }, "input[0].content[0].file_id"],
      [{ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_file", file_url: "http://localhost:9/a.txt" }] }] }, "input[0].content[0].file_url"],
      [{ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_file", file_url: "ftp://files.example.com/a.txt" }] }] }, "input[0].content[0].file_url"],
      [{ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_file", source: { type: "base64", media_type: "text/plain" } }] }] }, "input[0].content[0].source.data"],
      [{ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_file", source: { type: "base64", media_type: "text/plain", data: "not base64!" } }] }] }, "input[0].content[0]"],
      [{ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_file", filename: "report.pdf", file_data: "data:application/pdf;base64,JVBERi0=" }] }] }, "input[0].content[0]"],
      [{ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_file", file_data: `data:image/png;base64,${png}` }] }] }, "input[0].content[0]"],
      [{ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_file", filename: "blob", file_data: "aGk=" }] }] }, "input[0].content[0]"],
      [{ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_file", source: { type: "base64", media_type: "text/plain; charset=klingon", data: "aGk=" } }] }] }, "input[0].content[0]"],
      [{ model: "beamclaw", input: [{ role: "assistant", content: [{ type: "input_file", file_data: "data:text/plain;base64,aGk=" }] }] }, "input[0].content[0].type"],
      [{ model: "beamclaw", input: [{ type: "input_file", file_data: "data:text/plain;base64,aGk=" }] }, "input[0].type"],
      [{ model: "beamclaw", input: [{ type: "message", role: "user", content: [{ type: "input_image", source: { type: "url", url: "http://10.0.0.1/cat.png" } }] }] }, "input[0].content[0].source.url"],
      [{ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_image", image_url: "http://[::1]:9/cat.png" }] }] }, "input[0].content[0].image_url"],
      [{ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_image", source: { type: "url", url: "not a url" } }] }] }, "input[0].content[0].source.url"],
      [{ model: "beamclaw", input: [{ type: "message", role: "assistant", content: [{ type: "input_image", image_url: `data:image/png;base64,${png}` }] }] }, "input[0].content[0].type"],
      [{ model: "beamclaw", input: [{ type: "function_call_output", output: "x" }] }, "input[0].call_id"],
      [{ model: "beamclaw", input: [{ type: "function_call", call_id: "c", arguments: "{}" }] }, "input[0].name"],
      [{ model: "beamclaw", input: "x", tools: [{ type: "web_search" }] }, "tools[0].type"],
      [{ model: "beamclaw", input: "x", tools: [{ type: "function" }] }, "tools[0].name"],
      [{ model: "beamclaw", input: "x", tools: [{ type: "function", function: { name: "bad name" } }] }, "tools[0].function.name"],
      [{ model: "beamclaw", input: "x", tools: [weatherTool], tool_choice: { type: "function", name: "nope" } }, "tool_choice.name"],
      [{ model: "beamclaw", input: "x", tool_choice: "required" }, "tool_choice"],
      [{ model: "beamclaw", input: "x", max_output_tokens: 0 }, "max_output_tokens"],
      [{ model: "beamclaw", input: "x", temperature: 3 }, "temperature"],
      [{ model: "beamclaw", input: "x", stream: "yes" }, "stream"],
      [{ model: "beamclaw", input: "x", instructions: 7 }, "instructions"],
      [{ model: "beamclaw", input: "x", user: 42 }, "user"],
      [{ model: "beamclaw", input: "   " }, "input"],
      [{ model: "beamclaw", input: ["hi"] }, "input[0]"],
      [{ model: "beamclaw", input: "x", background: true }, "background"],
      [{ model: "beamclaw", input: "x", metadata: { trace: 1 } }, "metadata.trace"],
      [{ model: "beamclaw", input: "x", metadata: ["a"] }, "metadata"],
      [{ model: "beamclaw", input: "x", top_p: 2 }, "top_p"],
      [{ model: "beamclaw", input: "x", max_tool_calls: 1.5 }, "max_tool_calls"],
      [{ model: "beamclaw", input: "x", tools: weatherTool }, "tools"],
      [{ model: "beamclaw", input: "x", tools: [weatherTool, weatherTool] }, "tools[1].name"],
      [{ model: "beamclaw", input: "x", tools: [{ type: "function", name: "f", parameters: ["city"] }] }, "tools[0].parameters"],
      [{ model: "beamclaw", input: "x", tools: [weatherTool], tool_choice: { type: "allowed_tools", tools: [] } }, "tool_choice"],
      [{ model: "beamclaw", input: [{ type: "function_call", call_id: "c", name: "f", arguments: { city: "Oslo" } }] }, "input[0].arguments"],
      [{ model: "beamclaw", input: [{ type: "function_call_output", call_id: "c", output: [{ type: "input_image", image_url: "data:," }] }] }, "input[0].output[0].type"],
      [{ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_image" }] }] }, "input[0].content[0]"],
      [{ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_image", source: { type: "file", data: png } }] }] }, "input[0].content[0].source.type"],
      [{ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_image", source: { type: "base64", data: png } }] }] }, "input[0].content[0].source.media_type"],
      [{ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_text", text: 5 }] }] }, "input[0].content[0].text"]
    ]
    for (const [body, param] of cases) {
      const error = await expectError(await post(body), 400, param)
      assert.strictEqual(error.type, "invalid_request_error", JSON.stringify(body))
    }
    // URLs on loopback or a private network are refused before any connection (no ssrfPolicy in this config).
    const file = await expectError(await post(cases[7]?.[0] ?? {}), 400)
    assert.include(String(file.message), "could not fetch http://127.0.0.1:9/a.txt")
    assert.strictEqual(file.code, "url_not_allowed")
    const pdf = await expectError(await post(cases[13]?.[0] ?? {}), 400)
    assert.include(String(pdf.message), "not a readable PDF")
    const viaSdk = await client.responses.create({ model: "beamclaw", input: [] }).catch((e: unknown) => e)
    assert.instanceOf(viaSdk, OpenAI.BadRequestError)
    assert.strictEqual(viaSdk instanceof OpenAI.APIError ? viaSdk.param : undefined, "input")
    const svg = await expectError(await post({ model: "beamclaw", input: [{ role: "user", content: [{ type: "input_image", source: { type: "base64", media_type: "image/svg+xml", data: "PHN2Zz4=" } }] }] }), 400, "input")
    assert.include(String(svg.message), "not allowed")
    const malformed = await expectError(await post("{\"input\": "), 400)
    assert.strictEqual(malformed.code, "invalid_json")
  })

  it("accepts and ignores the fields OpenClaw ignores", async () => {
    const response = await post({
      model: "beamclaw",
      input: "ignored fields",
      max_tool_calls: 3,
      reasoning: { effort: "low" },
      metadata: { trace: "t1" },
      store: false,
      truncation: "auto",
      text: { format: { type: "text" } }
    })
    assert.strictEqual(response.status, 200)
    const json: unknown = await response.json()
    assert.deepStrictEqual(typeof json === "object" && json !== null && "metadata" in json ? json.metadata : undefined, { trace: "t1" })
  })

  it("answers 401 without a token or with a wrong one", async () => {
    const none = await expectError(await fetch(`${gateway.url}/v1/responses`, { method: "POST", body: "{}" }), 401)
    assert.strictEqual(none.code, "missing_api_key")
    const wrong = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: "wrong-token", maxRetries: 0 })
    const failure = await wrong.responses.create({ model: "beamclaw", input: "x" }).catch((e: unknown) => e)
    assert.instanceOf(failure, OpenAI.AuthenticationError)
  })

  it("answers 405 to other methods", async () => {
    const response = await fetch(`${gateway.url}/v1/responses`, { headers: { authorization: `Bearer ${gateway.token}` } })
    await expectError(response, 405)
    assert.strictEqual(response.headers.get("allow"), "POST")
  })
})
