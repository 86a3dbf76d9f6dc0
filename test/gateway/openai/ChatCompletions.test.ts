/**
 * POST /v1/chat/completions against the real gateway process, with the
 * official `openai` client (and plain fetch where the client would hide the
 * wire), over the protocol-faithful fake Anthropic.
 */
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import OpenAI from "openai"
import { type FakeAnthropicHandle, type RecordedAnthropicRequest, lastRequestOf, startFakeAnthropic, systemText, userTexts } from "../../support/FakeAnthropic.ts"
import { type StartedGateway, startGateway } from "../../support/Gateway.ts"
import { at, connect } from "../ws/WsClient.ts"

let fake: FakeAnthropicHandle
let gateway: StartedGateway
let client: OpenAI

beforeAll(async () => {
  fake = await startFakeAnthropic()
  gateway = await startGateway({ anthropicUrl: fake.url })
  client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: gateway.token, maxRetries: 0 })
})

afterAll(async () => {
  await gateway?.stop()
  await fake?.close()
})

const lastRequest = (): RecordedAnthropicRequest => lastRequestOf(fake)


const post = (body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${gateway.url}/v1/chat/completions`, {
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
  assert.property(error, "param")
  assert.property(error, "code")
  if (param !== undefined) assert.strictEqual(error?.param, param)
  return error ?? {}
}

const weatherTool = {
  type: "function" as const,
  function: { name: "get_weather", description: "Weather for a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } }
}

describe("chat completions", () => {
  it("answers a non-streaming request", async () => {
    const completion = await client.chat.completions.create({ model: "beamclaw", messages: [{ role: "user", content: "hello there" }] })
    assert.strictEqual(completion.object, "chat.completion")
    assert.match(completion.id, /^chatcmpl_/)
    assert.strictEqual(completion.model, "beamclaw")
    assert.strictEqual(completion.choices.length, 1)
    assert.strictEqual(completion.choices[0]?.message.role, "assistant")
    assert.strictEqual(completion.choices[0]?.message.content, "echo: hello there")
    assert.strictEqual(completion.choices[0]?.finish_reason, "stop")
    assert.isAbove(completion.usage?.prompt_tokens ?? 0, 0)
    assert.isAbove(completion.usage?.completion_tokens ?? 0, 0)
    assert.strictEqual(completion.usage?.total_tokens, (completion.usage?.prompt_tokens ?? 0) + (completion.usage?.completion_tokens ?? 0))
    // Without `user` or a session header every request is a fresh session.
    assert.strictEqual(lastRequest().body?.messages.length, 1)
  })

  it("streams chunks: role first, content deltas, finish reason, then a usage chunk", async () => {
    fake.push({ kind: "message", content: [{ type: "text", text: "one two three four" }] })
    const stream = await client.chat.completions.create({
      model: "openclaw/default",
      messages: [{ role: "user", content: "count" }],
      stream: true,
      stream_options: { include_usage: true }
    })
    const chunks: Array<OpenAI.Chat.Completions.ChatCompletionChunk> = []
    for await (const chunk of stream) chunks.push(chunk)
    assert.isAtLeast(chunks.length, 4)
    assert.strictEqual(chunks[0]?.choices[0]?.delta.role, "assistant")
    for (const chunk of chunks) assert.strictEqual(chunk.object, "chat.completion.chunk")
    const contentChunks = chunks.filter((c) => (c.choices[0]?.delta.content ?? "") !== "")
    assert.isAtLeast(contentChunks.length, 2, "the answer arrives in several deltas")
    assert.strictEqual(contentChunks.map((c) => c.choices[0]?.delta.content).join(""), "one two three four")
    const finishes = chunks.filter((c) => c.choices[0]?.finish_reason !== null && c.choices[0]?.finish_reason !== undefined)
    assert.strictEqual(finishes.length, 1)
    assert.strictEqual(finishes[0]?.choices[0]?.finish_reason, "stop")
    const last = chunks.at(-1)
    assert.deepStrictEqual(last?.choices, [])
    assert.isAbove(last?.usage?.total_tokens ?? 0, 0)
  })

  it("leaves usage out of the stream unless asked", async () => {
    const stream = await client.chat.completions.create({ model: "beamclaw", messages: [{ role: "user", content: "no usage" }], stream: true })
    const chunks: Array<OpenAI.Chat.Completions.ChatCompletionChunk> = []
    for await (const chunk of stream) chunks.push(chunk)
    assert.isTrue(chunks.every((c) => c.usage === undefined || c.usage === null))
    assert.strictEqual(chunks.at(-1)?.choices[0]?.finish_reason, "stop")
  })

  it("accepts every agent-target spelling of model", async () => {
    for (const model of ["beamclaw/main", "openclaw", "openclaw:main", "agent:main", "BeamClaw/Default"]) {
      const completion = await client.chat.completions.create({ model, messages: [{ role: "user", content: `via ${model}` }] })
      assert.strictEqual(completion.choices[0]?.message.content, `echo: via ${model}`)
      assert.strictEqual(completion.model, model)
    }
  })

  it("folds a client-supplied history into the turn, and system messages into its instructions", async () => {
    await client.chat.completions.create({
      model: "beamclaw",
      messages: [
        { role: "system", content: "Answer in French." },
        { role: "user", content: "My name is Ada." },
        { role: "assistant", content: "Nice to meet you, Ada." },
        { role: "user", content: "What is my name?" }
      ]
    })
    const [text] = userTexts(lastRequest())
    const system = lastRequest().body?.system
    assert.include(typeof system === "string" ? system : JSON.stringify(system), "Answer in French.")
    assert.notInclude(text, "Answer in French.")
    assert.include(text, "[Chat messages since your last reply - for context]\nUser: My name is Ada.\nAssistant: Nice to meet you, Ada.")
    assert.include(text, "[Current message - respond to this]\nUser: What is my name?")
  })

  it("passes a data: URI image from the latest user message to the model", async () => {
    const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    await client.chat.completions.create({
      model: "beamclaw",
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: `data:image/png;base64,${png}` } }] }]
    })
    const content = lastRequest().body?.messages[0]?.content
    assert.isArray(content)
    const blocks = Array.isArray(content) ? content : []
    assert.isTrue(blocks.some((b) => b.type === "image"))
    assert.isTrue(blocks.some((b) => b.type === "text" && b.text === "User sent image(s) with no text."))
  })
})

describe("sessions", () => {
  it("keeps a conversation per `user`", async () => {
    const user = `alice-${crypto.randomUUID()}`
    await client.chat.completions.create({ model: "beamclaw", user, messages: [{ role: "user", content: "first" }] })
    await client.chat.completions.create({ model: "beamclaw", user, messages: [{ role: "user", content: "second" }] })
    assert.deepStrictEqual(userTexts(lastRequest()), ["first", "second"])
    await client.chat.completions.create({ model: "beamclaw", user: `bob-${crypto.randomUUID()}`, messages: [{ role: "user", content: "other" }] })
    assert.deepStrictEqual(userTexts(lastRequest()), ["other"])
  })

  it("routes by the session-key header under both names, and names the key in the response", async () => {
    const key = `thread-${crypto.randomUUID()}`
    const first = await post({ model: "beamclaw", messages: [{ role: "user", content: "uno" }] }, { "x-beamclaw-session-key": key })
    assert.strictEqual(first.status, 200)
    assert.strictEqual(first.headers.get("x-beamclaw-session-key"), `agent:main:${key}`)
    const second = await post({ model: "beamclaw", messages: [{ role: "user", content: "dos" }] }, { "x-openclaw-session-key": key })
    assert.strictEqual(second.status, 200)
    assert.deepStrictEqual(userTexts(lastRequest()), ["uno", "dos"])
  })

  it("refuses the reserved session namespaces and bad keys", async () => {
    // Also every spelling the session layer would take for a sub-agent's or a cron run's key.
    for (const key of ["cron:nightly", "subagent:x", "acp:y", "agent:main:cron:z", "subagent", "work:subagent", "agent:main:x:subagent", "cron", "x:acp"]) {
      const error = await expectError(await post({ model: "beamclaw", messages: [{ role: "user", content: "x" }] }, { "x-openclaw-session-key": key }), 400)
      assert.strictEqual(error.code, "reserved_session_key")
    }
    await expectError(await post({ model: "beamclaw", messages: [{ role: "user", content: "x" }] }, { "x-beamclaw-session-key": "has space" }), 400, "x-beamclaw-session-key")
  })

  it("refuses JSON nested deeper than 128 levels and bodies that are not UTF-8, with a 400 naming why", async () => {
    const deep = (levels: number) => `${"{\"a\":".repeat(levels)}1${"}".repeat(levels)}`
    for (const field of ["temperature", "metadata"]) {
      const body = `{"model":"beamclaw","messages":[{"role":"user","content":"x"}],"${field}":${deep(5000)}}`
      const error = await expectError(await post(body), 400)
      assert.strictEqual(error.code, "invalid_json")
      assert.include(String(error.message), "nests more than 128 levels deep")
    }
    const huge = await expectError(await post({ model: "beamclaw", messages: [{ role: "user", content: "x" }], temperature: "t".repeat(100_000) }), 400, "temperature")
    assert.isBelow(String(huge.message).length, 400, "the error shows the start of a huge value, not all of it")
    const schema = await expectError(await post(`{"model":"beamclaw","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":${deep(20000)}}}]}`), 400)
    assert.strictEqual(schema.code, "invalid_json")
    // A real tool schema of ordinary depth is fine.
    const ordinary = await post({ model: "beamclaw", messages: [{ role: "user", content: "x" }], tools: [{ type: "function", function: { name: "f", parameters: JSON.parse(deep(20)) } }] })
    assert.strictEqual(ordinary.status, 200)
    const bytes = Buffer.concat([Buffer.from('{"model":"beamclaw","messages":[{"role":"user","content":"caf'), Buffer.from([0xe9, 0xff]), Buffer.from('"}]}')])
    const notUtf8 = await expectError(await fetch(`${gateway.url}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${gateway.token}`, "content-type": "application/json" }, body: bytes }), 400)
    assert.strictEqual(notUtf8.code, "unreadable_body")
    assert.strictEqual(notUtf8.message, "the request body is not valid UTF-8")
  })

  it("refuses an unknown agent in the agent-id header", async () => {
    const error = await expectError(await post({ model: "beamclaw", messages: [{ role: "user", content: "x" }] }, { "x-beamclaw-agent-id": "ghost" }), 400)
    assert.strictEqual(error.code, "agent_not_found")
  })

  it("cancels the model call when the client leaves mid-stream, and the session carries on", async () => {
    const user = `dave-${crypto.randomUUID()}`
    fake.push({ kind: "message", content: [{ type: "text", text: "a b c d e f g h i j k l m n o p" }], delayMs: 150 })
    const before = fake.requests.length
    const controller = new AbortController()
    const stream = await client.chat.completions.create(
      { model: "beamclaw", user, messages: [{ role: "user", content: "long story" }], stream: true },
      { signal: controller.signal }
    )
    let seen = ""
    try {
      for await (const chunk of stream) {
        seen += chunk.choices[0]?.delta.content ?? ""
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
    const next = await client.chat.completions.create({ model: "beamclaw", user, messages: [{ role: "user", content: "still there?" }] })
    assert.strictEqual(next.choices[0]?.message.content, "echo: still there?")
    assert.deepStrictEqual(userTexts(lastRequest()).at(-1), "still there?")
    assert.strictEqual(userTexts(lastRequest())[0], "long story")
  })
})

describe("backend model header", () => {
  it("runs one turn on the model x-openclaw-model names; the session keeps its own", async () => {
    const user = `model-${crypto.randomUUID()}`
    const overridden = await client.chat.completions.create(
      { model: "openclaw", user, messages: [{ role: "user", content: "on haiku" }] },
      { headers: { "x-openclaw-model": "anthropic/claude-haiku-9" } }
    )
    assert.strictEqual(overridden.choices[0]?.message.content, "echo: on haiku")
    assert.strictEqual(lastRequest().body?.model, "claude-haiku-9")
    // Per turn, as OpenClaw: the next turn of the same session is back on the agent's model.
    await client.chat.completions.create({ model: "openclaw", user, messages: [{ role: "user", content: "default again" }] })
    assert.strictEqual(lastRequest().body?.model, "claude-sonnet-5-5")
    assert.deepStrictEqual(userTexts(lastRequest()), ["on haiku", "default again"])
  })

  it("takes our header name and a bare model id (the agent's provider), streaming too", async () => {
    const stream = await client.chat.completions.create(
      { model: "openclaw", stream: true, messages: [{ role: "user", content: "bare" }] },
      { headers: { "x-beamclaw-model": "claude-opus-9" } }
    )
    let text = ""
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ""
    assert.strictEqual(text, "echo: bare")
    assert.strictEqual(lastRequest().body?.model, "claude-opus-9")
  })

  it("refuses a model of an unknown provider with a 400 naming the header, before any model call", async () => {
    const before = fake.requests.length
    const error = await expectError(await post({ messages: [{ role: "user", content: "x" }] }, { "x-openclaw-model": "nosuch/model-1" }), 400, "x-openclaw-model")
    assert.strictEqual(error.code, "model_not_found")
    assert.include(String(error.message), "x-openclaw-model")
    assert.include(String(error.message), "nosuch")
    await expectError(await post({ messages: [{ role: "user", content: "x" }] }, { "x-beamclaw-model": "anthropic/" }), 400, "x-beamclaw-model")
    assert.strictEqual(fake.requests.length, before)
  })
})

describe("client tools", () => {
  it("returns the model's call of a client tool, then continues with the client's result", async () => {
    fake.push({ kind: "message", content: [{ type: "text", text: "Let me check." }, { type: "tool_use", id: "toolu_weather_1", name: "get_weather", input: { city: "Paris" } }] })
    // One session for both requests, so the second also proves the first left a valid transcript.
    const user = `tools-${crypto.randomUUID()}`
    const first = await client.chat.completions.create({
      model: "beamclaw",
      user,
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools: [weatherTool]
    })
    const choice = first.choices[0]
    assert.strictEqual(choice?.finish_reason, "tool_calls")
    assert.strictEqual(choice?.message.content, "Let me check.")
    const call = choice?.message.tool_calls?.[0]
    assert.strictEqual(call?.type, "function")
    assert.strictEqual(call?.id, "toolu_weather_1")
    assert.strictEqual(call?.type === "function" ? call.function.name : undefined, "get_weather")
    assert.deepStrictEqual(JSON.parse(call?.type === "function" ? call.function.arguments : "null"), { city: "Paris" })

    const second = await client.chat.completions.create({
      model: "beamclaw",
      user,
      tools: [weatherTool],
      messages: [
        { role: "user", content: "Weather in Paris?" },
        { role: "assistant", content: "Let me check.", tool_calls: [{ id: "toolu_weather_1", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Paris\"}" } }] },
        { role: "tool", tool_call_id: "toolu_weather_1", content: "18C and sunny" }
      ]
    })
    assert.strictEqual(second.choices[0]?.finish_reason, "stop")
    const text = userTexts(lastRequest()).at(-1) ?? ""
    assert.include(text, "User: Weather in Paris?")
    assert.include(text, "[called get_weather({\"city\":\"Paris\"})]")
    assert.include(text, "[Current message - respond to this]\nTool:get_weather: 18C and sunny")
    assert.include(second.choices[0]?.message.content ?? "", "Tool:get_weather: 18C and sunny")
  })

  it("streams a client tool call as delta.tool_calls with finish_reason tool_calls", async () => {
    fake.push({ kind: "message", content: [{ type: "tool_use", id: "toolu_weather_2", name: "get_weather", input: { city: "Oslo" } }] })
    const stream = await client.chat.completions.create({
      model: "beamclaw",
      messages: [{ role: "user", content: "Weather in Oslo?" }],
      tools: [weatherTool],
      tool_choice: { type: "function", function: { name: "get_weather" } },
      stream: true,
      stream_options: { include_usage: true }
    })
    const chunks: Array<OpenAI.Chat.Completions.ChatCompletionChunk> = []
    for await (const chunk of stream) chunks.push(chunk)
    const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? [])
    assert.strictEqual(calls.length, 1)
    assert.strictEqual(calls[0]?.id, "toolu_weather_2")
    assert.strictEqual(calls[0]?.function?.name, "get_weather")
    assert.deepStrictEqual(JSON.parse(calls[0]?.function?.arguments ?? "null"), { city: "Oslo" })
    assert.strictEqual(chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0]?.finish_reason, "tool_calls")
    assert.deepStrictEqual(chunks.at(-1)?.choices, [])
    // The pinned function is forced on the model, and named in the turn's instructions.
    assert.deepStrictEqual(lastRequest().body?.tool_choice, { type: "tool", name: "get_weather" })
    assert.include(systemText(lastRequest()), "You must call the get_weather tool before responding.")
  })

  it("forces a required tool choice on the model: the client gets a call, and the turn's later model calls choose freely", async () => {
    const answer = await client.chat.completions.create({
      model: "beamclaw",
      messages: [{ role: "user", content: "Weather somewhere?" }],
      tools: [weatherTool],
      tool_choice: "required"
    })
    assert.deepStrictEqual(lastRequest().body?.tool_choice, { type: "any" })
    assert.include(systemText(lastRequest()), "You must call one of the available tools before responding.")
    assert.strictEqual(answer.choices[0]?.finish_reason, "tool_calls")
    assert.strictEqual(answer.choices[0]?.message.tool_calls?.[0]?.type === "function" ? answer.choices[0].message.tool_calls[0].function.name : undefined, "get_weather")
    // Without a forcing choice nothing is forced.
    await client.chat.completions.create({ model: "beamclaw", messages: [{ role: "user", content: "x" }], tools: [weatherTool] })
    assert.isUndefined(lastRequest().body?.tool_choice)
  })

  it("fails a required tool choice the agent did not honour (a model that answers in prose all the same)", async () => {
    fake.push({ kind: "message", content: [{ type: "text", text: "just talking" }] })
    const error = await expectError(await post({
      model: "beamclaw",
      messages: [{ role: "user", content: "just talk" }],
      tools: [weatherTool],
      tool_choice: "required"
    }), 502)
    assert.strictEqual(error.code, "tool_call_missing")
  })

  it("offers the client's tools to the model, and its system messages as instructions", async () => {
    await client.chat.completions.create({
      model: "beamclaw",
      messages: [{ role: "system", content: "Answer in French." }, { role: "user", content: "tools?" }],
      tools: [weatherTool]
    })
    assert.isTrue((lastRequest().body?.tools ?? []).some((tool) => tool.name === "get_weather"))
    const system = lastRequest().body?.system
    assert.include(typeof system === "string" ? system : JSON.stringify(system), "Answer in French.")
    assert.notInclude(JSON.stringify(lastRequest().body?.messages), "Answer in French.", "instructions are not part of the conversation")
  })

  it("refuses the tool variants OpenClaw refuses", async () => {
    const base = { model: "beamclaw", messages: [{ role: "user", content: "x" }] }
    await expectError(await post({ ...base, tools: { type: "function" } }), 400, "tools")
    await expectError(await post({ ...base, tools: [{ type: "custom", custom: { name: "x" } }] }), 400, "tools[0].type")
    await expectError(await post({ ...base, tools: [{ type: "function", function: {} }] }), 400, "tools[0].function.name")
    await expectError(await post({ ...base, tools: [weatherTool], tool_choice: { type: "allowed_tools", allowed_tools: { mode: "auto", tools: [] } } }), 400, "tool_choice")
    await expectError(await post({ ...base, tools: [weatherTool], tool_choice: { type: "custom", custom: { name: "x" } } }), 400, "tool_choice")
    await expectError(await post({ ...base, tools: [weatherTool], tool_choice: { type: "function", function: { name: "nope" } } }), 400, "tool_choice.function.name")
    await expectError(await post({ ...base, tool_choice: "required" }), 400, "tool_choice")
    await expectError(await post({ model: "beamclaw", messages: [{ role: "user", content: "x" }, { role: "tool", tool_call_id: "call_unknown", content: "r" }] }), 400, "messages[1].tool_call_id")
    await expectError(await post({ model: "beamclaw", messages: [{ role: "user", content: "x" }, { role: "tool", content: "r" }] }), 400, "messages[1].tool_call_id")
  })
})

describe("errors", () => {
  it("refuses a model that is not an agent target, and an unknown agent", async () => {
    const bad = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e)
    assert.instanceOf(bad, OpenAI.BadRequestError)
    assert.strictEqual(bad instanceof OpenAI.APIError ? bad.param : undefined, "model")
    const unknown = await client.chat.completions.create({ model: "beamclaw/ghost", messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e)
    assert.instanceOf(unknown, OpenAI.NotFoundError)
    assert.strictEqual(unknown instanceof OpenAI.APIError ? unknown.code : undefined, "model_not_found")
  })

  it("validates sampling fields with OpenAI-shaped 400s", async () => {
    const base = { model: "beamclaw", messages: [{ role: "user", content: "x" }] }
    const cases: ReadonlyArray<readonly [Record<string, unknown>, string]> = [
      [{ temperature: 3 }, "temperature"],
      [{ temperature: -0.1 }, "temperature"],
      [{ temperature: "hot" }, "temperature"],
      [{ top_p: 1.5 }, "top_p"],
      [{ frequency_penalty: 2.5 }, "frequency_penalty"],
      [{ presence_penalty: -3 }, "presence_penalty"],
      [{ max_tokens: 0 }, "max_tokens"],
      [{ max_tokens: 1.5 }, "max_tokens"],
      [{ max_completion_tokens: -1 }, "max_completion_tokens"],
      [{ n: 2 }, "n"],
      [{ seed: 1.5 }, "seed"],
      [{ stop: ["a", "b", "c", "d", "e"] }, "stop"],
      [{ stop: [""] }, "stop[0]"],
      [{ stream: "yes" }, "stream"],
      [{ stream_options: { include_usage: true } }, "stream_options"],
      [{ user: 42 }, "user"],
      [{ messages: [] }, "messages"],
      [{ messages: [{ role: "wizard", content: "x" }] }, "messages[0].role"],
      [{ messages: [{ role: "user", content: [{ type: "input_audio", input_audio: {} }] }] }, "messages[0].content[0].type"]
    ]
    for (const [patch, param] of cases) {
      const error = await expectError(await post({ ...base, ...patch }), 400, param)
      assert.strictEqual(error.type, "invalid_request_error", JSON.stringify(patch))
    }
    const viaSdk = await client.chat.completions.create({ ...base, messages: [{ role: "user", content: "x" }], n: 2 }).catch((e: unknown) => e)
    assert.instanceOf(viaSdk, OpenAI.BadRequestError)
    // In range is fine.
    const ok = await post({ ...base, temperature: 0.2, top_p: 1, max_tokens: 64, n: 1, seed: 7, stop: "END" })
    assert.strictEqual(ok.status, 200)
  })

  it("refuses malformed JSON and non-object bodies", async () => {
    const error = await expectError(await post("{\"model\": \"beamclaw\", "), 400)
    assert.strictEqual(error.code, "invalid_json")
    await expectError(await post("[1,2,3]"), 400, null)
  })

  it("answers 413 past the 20 MB body limit", async () => {
    const big = JSON.stringify({ model: "beamclaw", messages: [{ role: "user", content: "x".repeat(21 * 1024 * 1024) }] })
    const error = await expectError(await post(big), 413)
    assert.strictEqual(error.code, "payload_too_large")
  })

  it("caps images and refuses URL images", async () => {
    const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    const part = { type: "image_url", image_url: { url: `data:image/png;base64,${png}` } }
    const nine = await expectError(await post({ model: "beamclaw", messages: [{ role: "user", content: Array.from({ length: 9 }, () => part) }] }), 400)
    assert.include(String(nine.message), "limit is 8")
    // images.allowUrl is off by default (as in OpenClaw): refused before any connection, naming the part.
    const url = await expectError(await post({ model: "beamclaw", messages: [{ role: "user", content: [{ type: "text", text: "see" }, { type: "image_url", image_url: { url: "https://example.com/cat.png" } }] }] }), 400)
    assert.include(String(url.message), "images.allowUrl")
    assert.strictEqual(url.param, "messages[0].content[1].image_url.url")
    assert.strictEqual(url.code, "url_not_allowed")
    const svg = await expectError(await post({ model: "beamclaw", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/svg+xml;base64,PHN2Zz4=" } }] }] }), 400)
    assert.include(String(svg.message), "not allowed")
    const huge = `data:image/png;base64,${"A".repeat(Math.ceil(10.5 * 1024 * 1024 / 3) * 4)}`
    const tooBig = await expectError(await post({ model: "beamclaw", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: huge } }] }] }), 400)
    assert.include(String(tooBig.message), "limit per image")
  })

  it("answers 401 without a token or with a wrong one", async () => {
    const none = await fetch(`${gateway.url}/v1/chat/completions`, { method: "POST", body: "{}" })
    const error = await expectError(none, 401)
    assert.strictEqual(error.code, "missing_api_key")
    const wrong = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: "wrong-token", maxRetries: 0 })
    const failure = await wrong.chat.completions.create({ model: "beamclaw", messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e)
    assert.instanceOf(failure, OpenAI.AuthenticationError)
  })

  it("answers 405 to other methods", async () => {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, { headers: { authorization: `Bearer ${gateway.token}` } })
    await expectError(response, 405)
    assert.strictEqual(response.headers.get("allow"), "POST")
  })
})

describe("models", () => {
  it("lists the agents as models and fetches one", async () => {
    const page = await client.models.list()
    const ids = page.data.map((model) => model.id)
    assert.includeMembers(ids, ["beamclaw", "beamclaw/default", "beamclaw/main"])
    for (const model of page.data) {
      assert.strictEqual(model.object, "model")
      assert.strictEqual(model.owned_by, "beamclaw")
    }
    const one = await client.models.retrieve("beamclaw/default")
    assert.strictEqual(one.id, "beamclaw/default")
    const missing = await client.models.retrieve("beamclaw/ghost").catch((e: unknown) => e)
    assert.instanceOf(missing, OpenAI.NotFoundError)
    const unauthenticated = await fetch(`${gateway.url}/v1/models`)
    assert.strictEqual(unauthenticated.status, 401)
  })
})

describe("curl", () => {
  it.skipIf(!existsSync("/usr/bin/curl") && !existsSync("/bin/curl"))("streams over plain curl, ending with data: [DONE]", async () => {
    fake.push({ kind: "message", content: [{ type: "text", text: "curl says hi" }] })
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn("curl", [
        "-sS", "-N", `${gateway.url}/v1/chat/completions`,
        "-H", `Authorization: Bearer ${gateway.token}`,
        "-H", "Content-Type: application/json",
        "-d", JSON.stringify({ model: "beamclaw", stream: true, messages: [{ role: "user", content: "hi" }] })
      ])
      let out = ""
      child.stdout.on("data", (chunk: Buffer) => { out += chunk.toString("utf8") })
      child.on("error", reject)
      child.on("close", (code) => code === 0 ? resolve(out) : reject(new Error(`curl exited ${code}`)))
    })
    const events = output.split("\n\n").filter((event) => event.trim() !== "")
    assert.isTrue(events.every((event) => event.startsWith("data: ")))
    assert.strictEqual(events.at(-1), "data: [DONE]")
    const payloads = events.slice(0, -1).map((event): { choices: Array<{ delta: { content?: string } }> } => JSON.parse(event.slice(6)))
    assert.strictEqual(payloads.map((p) => p.choices[0]?.delta.content ?? "").join(""), "curl says hi")
  })
})

describe("sessions made for one request", () => {
  it("a request without user or session header does not leave a live session behind", async () => {
    const { client: ws } = await connect(gateway.wsUrl, gateway.token)
    const sessionsNow = async () => {
      const status = await ws.request("status", {})
      return { live: Number(at(status, "payload", "sessions", "live")), passivations: Number(at(status, "payload", "sessions", "passivations")) }
    }
    try {
      const before = await sessionsNow()
      for (const text of ["one", "two", "three"]) {
        const completion = await client.chat.completions.create({ model: "beamclaw", messages: [{ role: "user", content: text }] })
        assert.strictEqual(completion.choices[0]?.message.content, `echo: ${text}`)
      }
      const deadline = Date.now() + 2000
      let after = await sessionsNow()
      while (after.passivations < before.passivations + 3 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20))
        after = await sessionsNow()
      }
      assert.strictEqual(after.passivations, before.passivations + 3)
      assert.strictEqual(after.live, before.live)
      // A conversation under a `user` stays live for its next message.
      await client.chat.completions.create({ model: "beamclaw", user: "stays", messages: [{ role: "user", content: "hi" }] })
      await new Promise((resolve) => setTimeout(resolve, 100))
      assert.strictEqual((await sessionsNow()).live, before.live + 1)
    } finally {
      await ws.close()
    }
  })
})

