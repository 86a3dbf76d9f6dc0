import { assert, describe, it } from "@effect/vitest"
import { commandBody, isControlCommand, modelCatalogOf, parseChatCommand, resolveNewArgs } from "../../src/channels/ChatCommands.ts"
import { BeamclawConfig } from "../../src/config/ConfigSchema.ts"
import { Schema } from "effect"

const parsed = (text: string) => {
  const command = parseChatCommand(text)
  return command === undefined ? undefined : { ...command }
}

describe("ChatCommands", () => {
  it("parses each command and its arguments", () => {
    assert.deepStrictEqual(parsed("/new"), { _tag: "New" })
    assert.deepStrictEqual(parsed("/new anthropic/claude-opus-4"), { _tag: "New", args: "anthropic/claude-opus-4" })
    assert.deepStrictEqual(parsed("/new opus  let us start over"), { _tag: "New", args: "opus  let us start over" })
    assert.deepStrictEqual(parsed("/reset"), { _tag: "Reset" })
    assert.deepStrictEqual(parsed("/reset hello again"), { _tag: "Reset", message: "hello again" })
    assert.deepStrictEqual(parsed("/status"), { _tag: "Status" })
    assert.deepStrictEqual(parsed("/stop"), { _tag: "Stop" })
    assert.deepStrictEqual(parsed("/help"), { _tag: "Help" })
    assert.deepStrictEqual(parsed("/model"), { _tag: "Model" })
    assert.deepStrictEqual(parsed("/model openai/gpt-5"), { _tag: "Model", name: "openai/gpt-5" })
    assert.deepStrictEqual(parsed("/compact"), { _tag: "Compact" })
    assert.deepStrictEqual(parsed("/compact keep the decisions\nand the open questions"), {
      _tag: "Compact",
      instructions: "keep the decisions\nand the open questions"
    })
  })

  it("reads /think levels, with its aliases, and keeps an unknown level for the reply", () => {
    assert.deepStrictEqual(parsed("/think high"), { _tag: "Think", level: "high" })
    assert.deepStrictEqual(parsed("/thinking LOW"), { _tag: "Think", level: "low" })
    assert.deepStrictEqual(parsed("/t off"), { _tag: "Think", level: "off" })
    assert.deepStrictEqual(parsed("/think"), { _tag: "Think" })
    assert.deepStrictEqual(parsed("/think banana"), { _tag: "Think", unknownLevel: "banana" })
    assert.deepStrictEqual(parsed("/think: xhigh"), { _tag: "Think", level: "xhigh" })
  })

  it("ignores case, surrounding whitespace and an optional colon", () => {
    assert.deepStrictEqual(parsed("  /STATUS  "), { _tag: "Status" })
    assert.deepStrictEqual(parsed("/Model: opus"), { _tag: "Model", name: "opus" })
    assert.deepStrictEqual(parsed("/new:"), { _tag: "New" })
    assert.deepStrictEqual(parsed("/reset\n"), { _tag: "Reset" })
  })

  it("treats everything else as plain text", () => {
    for (const text of [
      "hello",
      "",
      "/",
      "/ status",
      "please /status",
      "/statusx",
      "/foo bar",
      "/new-thing",
      "//new",
      "\\/new",
      "/newmodel",
      "/status/x",
      "/thinkhigh",
      "/new@beamclaw"
    ]) {
      assert.isUndefined(parseChatCommand(text), JSON.stringify(text))
    }
  })

  it("reads commands after the bot's mention, as a guild message is addressed", () => {
    assert.strictEqual(commandBody("<@123456> /status"), "/status")
    assert.strictEqual(commandBody("<@!123456>   /think high "), "/think high")
    assert.deepStrictEqual(parsed(commandBody("<@123456> /think high")), { _tag: "Think", level: "high" })
    assert.isTrue(isControlCommand("<@123456> /stop"))
    assert.isFalse(isControlCommand("<@123456> stop /stop"))
    assert.isFalse(isControlCommand("what does /stop do?"))
  })
})

const config = (encoded: Record<string, unknown>) => Schema.decodeUnknownSync(BeamclawConfig)(encoded)

describe("/new: model or first message (OpenClaw's rule)", () => {
  // An allowlist with aliases, a second provider, and the agent's own chain.
  const restricted = modelCatalogOf(config({
    agents: {
      defaults: {
        model: { primary: "anthropic/claude-sonnet-4-5", fallbacks: ["openai/gpt-5-mini"] },
        models: { "anthropic/claude-sonnet-4-5": { alias: "sonnet" }, "anthropic/claude-opus-4-1": { alias: "opus" }, "openai/gpt-5-mini": {} }
      }
    }
  }), "main")

  it("a model alias, a provider/model id, provider and model as two words, or a provider name starts the args as a model", () => {
    assert.deepStrictEqual(resolveNewArgs("opus let us start over", restricted), { model: "anthropic/claude-opus-4-1", message: "let us start over" })
    assert.deepStrictEqual(resolveNewArgs("OPUS", restricted), { model: "anthropic/claude-opus-4-1" })
    assert.deepStrictEqual(resolveNewArgs("anthropic/claude-opus-4-1 hi", restricted), { model: "anthropic/claude-opus-4-1", message: "hi" })
    assert.deepStrictEqual(resolveNewArgs("openai gpt-5-mini plan my week", restricted), { model: "openai/gpt-5-mini", message: "plan my week" })
    assert.deepStrictEqual(resolveNewArgs("openai plan my week", restricted), { model: "openai/gpt-5-mini", message: "plan my week" })
    // Fuzzy: a word of six or more characters that is part of a model id.
    assert.deepStrictEqual(resolveNewArgs("claude-opus tell me", restricted), { model: "anthropic/claude-opus-4-1", message: "tell me" })
  })

  it("anything that is not a model the session may use is the first message, kept as written", () => {
    assert.deepStrictEqual(resolveNewArgs("summarize this thread", restricted), { message: "summarize this thread" })
    assert.deepStrictEqual(resolveNewArgs("hello", restricted), { message: "hello" })
    assert.deepStrictEqual(resolveNewArgs("what is\nnew today?", restricted), { message: "what is\nnew today?" })
    // Outside the allowlist, even in full, a model is not chosen: the text is the message.
    assert.deepStrictEqual(resolveNewArgs("anthropic/claude-haiku-9 hi", restricted), { message: "anthropic/claude-haiku-9 hi" })
    // Short words are never fuzzy-matched ("son" is part of "sonnet").
    assert.deepStrictEqual(resolveNewArgs("son of a gun", restricted), { message: "son of a gun" })
    // A provider name followed by a word that is none of its models: the name alone picks its first model (OpenClaw's fuzzy match).
    assert.deepStrictEqual(resolveNewArgs("anthropic models are good", restricted), { model: "anthropic/claude-sonnet-4-5", message: "models are good" })
    assert.deepStrictEqual(resolveNewArgs(undefined, restricted), {})
    assert.deepStrictEqual(resolveNewArgs("   ", restricted), {})
  })

  it("without an allowlist any provider/model of a known provider may be named; bare unknown ids stay text", () => {
    const open = modelCatalogOf(config({ models: { providers: { local: { baseUrl: "http://127.0.0.1:1", api: "openai-completions", models: [{ id: "qwen3-32b" }] } } } }), "main")
    assert.isFalse(open.restricted)
    assert.deepStrictEqual(resolveNewArgs("anthropic/claude-opus-4-1 hi", open), { model: "anthropic/claude-opus-4-1", message: "hi" })
    assert.deepStrictEqual(resolveNewArgs("local qwen3-32b hi", open), { model: "local/qwen3-32b", message: "hi" })
    assert.deepStrictEqual(resolveNewArgs("nobody/model hi", open), { message: "nobody/model hi" })
    assert.deepStrictEqual(resolveNewArgs("qwen3-32b", open), { model: "local/qwen3-32b" })
    assert.deepStrictEqual(resolveNewArgs("claude-opus-4-1 hi", open), { message: "claude-opus-4-1 hi" })
  })
})
