import { assert, describe, it } from "@effect/vitest"
import { defaultConfig } from "../../../src/config/ConfigSchema.ts"
import { isNativeCommandName, NATIVE_COMMANDS, nativeCommandsEnabled } from "../../../src/channels/discord/NativeCommands.ts"

const discord = defaultConfig.channels.discord

describe("NativeCommands", () => {
  it("commands.native: auto is on for Discord; the channel's own setting wins over the global one", () => {
    assert.isTrue(nativeCommandsEnabled("auto", discord))
    assert.isFalse(nativeCommandsEnabled(false, discord))
    assert.isTrue(nativeCommandsEnabled(true, discord))
    assert.isFalse(nativeCommandsEnabled(true, { ...discord, commands: { native: false } }))
    assert.isTrue(nativeCommandsEnabled(false, { ...discord, commands: { native: true } }))
    assert.isTrue(nativeCommandsEnabled(false, { ...discord, commands: { native: "auto" } }))
    assert.isFalse(nativeCommandsEnabled(false, { ...discord, commands: {} }), "an empty override falls back to the global setting")
  })

  it("covers every chat command, within Discord's limits (names 1-32 lower-case, descriptions 1-100, choices 25)", () => {
    assert.deepStrictEqual(NATIVE_COMMANDS.map((c) => c.name), ["new", "reset", "status", "stop", "model", "think", "compact", "help"])
    for (const command of NATIVE_COMMANDS) {
      assert.match(command.name, /^[a-z0-9_-]{1,32}$/)
      assert.isAtLeast(command.description.length, 1)
      assert.isAtMost(command.description.length, 100)
      if (command.option !== undefined) {
        assert.match(command.option.name, /^[a-z0-9_-]{1,32}$/)
        assert.isAtMost(command.option.description.length, 100)
        assert.isAtMost(command.option.choices?.length ?? 0, 25)
      }
    }
    assert.isTrue(isNativeCommandName("think"))
    assert.isFalse(isNativeCommandName("thinking"), "aliases are text-only")
    assert.isFalse(isNativeCommandName("weather"))
  })
})
