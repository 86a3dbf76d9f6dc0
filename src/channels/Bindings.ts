/**
 * The `bindings` config: which agent answers which conversations, OpenClaw's
 * `bindings[]`. Each rule names an agent and a `match` (channel, account,
 * peer, guild, roles); `Routing.resolveAgentRoute` applies them by tiers.
 *
 * This module imports nothing from the config schema, so the schema can
 * import it: `bindings: Bindings` at the top level of `BeamclawConfig`.
 * Agent ids and DM scopes are spelled here as `ConfigSchema` spells them
 * (a test keeps the two in step).
 *
 * Ids are strings. A Discord id written as a YAML number (18 digits) has
 * already lost digits when it is parsed, so numbers are refused with a
 * message that says to quote them.
 */
import { Schema, SchemaTransformation } from "effect"
import { ChatType } from "./InboundMessage.ts"

const AGENT_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/i
const AGENT_ID_EXPECTED = "an agent id (letters, digits, `_` or `-`, at most 64, starting with a letter or digit)"

/** As `ConfigSchema.AgentId`: case-insensitive, decoded lower-cased. */
const BindingAgentId = Schema.String.check(
  Schema.makeFilter((s: string) => AGENT_ID.test(s), { expected: AGENT_ID_EXPECTED })
).annotate({ expected: AGENT_ID_EXPECTED }).pipe(Schema.decodeTo(Schema.String, SchemaTransformation.toLowerCase()))

/** As `ConfigSchema.DmScope`. */
export const BindingDmScope = Schema.Literals(["main", "per-peer", "per-channel-peer", "per-account-channel-peer"])

const CONFIG_ID_EXPECTED = "an id as a quoted string (YAML reads long numbers such as Discord ids as floats and loses digits)"

/** An id in the config file. Numbers are refused: an 18-digit Discord id read as a YAML number is already wrong. */
// (A one-member union carries `expected` for a wrong type too, so a number reads the same as a bad string.)
export const ConfigId = Schema.Union([
  Schema.String.check(
    Schema.makeFilter((s: string) => s.trim() !== "" && !/[\s\u0000-\u001f\u007f]/.test(s.trim()), { expected: CONFIG_ID_EXPECTED })
  )
]).annotate({ expected: CONFIG_ID_EXPECTED }).pipe(Schema.decodeTo(Schema.String, SchemaTransformation.trim()))

const BINDING_CHANNEL = /^[a-z0-9][a-z0-9_-]{0,63}$/i
const BINDING_CHANNEL_EXPECTED = "a channel id like \"discord\""

/** Channel ids are case-insensitive in bindings; they decode lower-cased. */
const BindingChannel = Schema.Union([
  Schema.String.check(Schema.makeFilter((s: string) => BINDING_CHANNEL.test(s), { expected: BINDING_CHANNEL_EXPECTED }))
]).annotate({ expected: BINDING_CHANNEL_EXPECTED }).pipe(Schema.decodeTo(Schema.String, SchemaTransformation.toLowerCase()))

/** A conversation on a channel. `id: "*"` matches every peer of that kind. */
export const BindingPeer = Schema.Struct({
  kind: ChatType,
  id: ConfigId
})
export type BindingPeer = typeof BindingPeer.Type

export const BindingMatch = Schema.Struct({
  channel: BindingChannel,
  /** `"*"`: any account of the channel; missing or empty: the `default` account only; else that account. */
  accountId: Schema.optionalKey(Schema.String),
  peer: Schema.optionalKey(BindingPeer),
  guildId: Schema.optionalKey(ConfigId),
  /** Role ids; the binding matches a member holding at least one of them (needs `guildId`). */
  roles: Schema.optionalKey(Schema.Array(ConfigId))
}).check(Schema.makeFilter((match) =>
  match.roles !== undefined && match.roles.length > 0 && match.guildId === undefined
    ? { path: ["roles"], issue: "roles only apply within a guild: set guildId as well" }
    : undefined
))
export type BindingMatch = typeof BindingMatch.Type

/** One routing rule: messages matching `match` go to `agentId`. */
export const Binding = Schema.Struct({
  agentId: BindingAgentId,
  match: BindingMatch,
  session: Schema.optionalKey(Schema.Struct({
    /** Overrides `session.dmScope` for the DMs this binding matches. */
    dmScope: Schema.optionalKey(BindingDmScope)
  }))
})
export type Binding = typeof Binding.Type

/** The top-level `bindings` list, in priority order within each tier. */
export const Bindings = Schema.Array(Binding)
export type Bindings = typeof Bindings.Type
