import { assert, describe, it } from "@effect/vitest"
import { commandBody, isControlCommand, parseChatCommand } from "../../src/channels/ChatCommands.ts"

const parsed = (text: string) => {
  const command = parseChatCommand(text)
  return command === undefined ? undefined : { ...command }
}

describe("ChatCommands", () => {
  it("parses each command and its arguments", () => {
    assert.deepStrictEqual(parsed("/new"), { _tag: "New" })
    assert.deepStrictEqual(parsed("/new anthropic/claude-opus-4"), { _tag: "New", model: "anthropic/claude-opus-4" })
    assert.deepStrictEqual(parsed("/new opus  let us start over"), { _tag: "New", model: "opus", message: "let us start over" })
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
