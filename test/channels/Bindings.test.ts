import { assert, describe, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import { BindingDmScope, Bindings } from "../../src/channels/Bindings.ts"
import { AgentId, DmScope, parseOptions } from "../../src/config/ConfigSchema.ts"

const GUILD = "1000000000000000001"
const ROLE = "4000000000000000001"

const decode = (input: unknown) => Schema.decodeUnknownSync(Bindings)(input, parseOptions)
const problem = (input: unknown): string => {
  const decoded = Schema.decodeUnknownResult(Bindings)(input, parseOptions)
  if (Result.isSuccess(decoded)) throw new Error("expected the bindings to be refused")
  return decoded.failure.message
}

describe("Bindings", () => {
  it("decodes bindings, lower-casing channel and agent ids and trimming ids", () => {
    assert.deepStrictEqual(decode([{ agentId: "Ops", match: { channel: "Discord", guildId: ` ${GUILD} `, roles: [ROLE] }, session: { dmScope: "per-peer" } }]), [
      { agentId: "ops", match: { channel: "discord", guildId: GUILD, roles: [ROLE] }, session: { dmScope: "per-peer" } }
    ])
    assert.deepStrictEqual(decode([{ agentId: "a", match: { channel: "discord", accountId: "*", peer: { kind: "channel", id: "*" } } }])[0]?.match, {
      channel: "discord",
      accountId: "*",
      peer: { kind: "channel", id: "*" }
    })
    assert.deepStrictEqual(decode([]), [])
  })

  it("refuses ids written as numbers, roles without a guild, and unknown keys, with a message that says why", () => {
    assert.include(problem([{ agentId: "ops", match: { channel: "discord", guildId: 123456789012345680 } }]), "quoted string")
    assert.include(problem([{ agentId: "ops", match: { channel: "discord", peer: { kind: "direct", id: 42 } } }]), "quoted string")
    assert.include(problem([{ agentId: "ops", match: { channel: "discord", roles: [ROLE] } }]), "set guildId as well")
    assert.include(problem([{ agentId: "ops", match: { channel: "discord", peer: { kind: "dm", id: "1" } } }]), "direct")
    assert.include(problem([{ agentId: "ops", match: { channel: "discord", peer: { kind: "channel", id: "a b" } } }]), "quoted string")
    assert.include(problem([{ agentId: "-bad", match: { channel: "discord" } }]), "agent id")
    assert.include(problem([{ agentId: "ops", match: { channel: "dis cord" } }]), "channel id")
    assert.include(problem([{ agentId: "ops", match: { channel: "discord", teamId: "T1" } }]), "teamId")
    assert.include(problem([{ agentId: "ops", match: { channel: "discord" }, session: { dmScope: "per-room" } }]), "dmScope")
    assert.include(problem([{ agentId: "ops" }]), "match")
    assert.include(problem({ agentId: "ops" }), "Expected array")
  })

  it("spells agent ids and DM scopes exactly as the config schema does", () => {
    assert.deepStrictEqual(BindingDmScope.literals, DmScope.literals)
    for (const id of ["main", "Ops", "a_b-c", "9lives", "x".repeat(64), "x".repeat(65), "-bad", "_bad", "a b", "", "é"]) {
      const config = Schema.decodeUnknownResult(AgentId)(id)
      const binding = Schema.decodeUnknownResult(Bindings)([{ agentId: id, match: { channel: "discord" } }])
      assert.strictEqual(Result.isSuccess(binding), Result.isSuccess(config), JSON.stringify(id))
      if (Result.isSuccess(binding) && Result.isSuccess(config)) assert.strictEqual(binding.success[0]?.agentId, config.success)
    }
  })
})
