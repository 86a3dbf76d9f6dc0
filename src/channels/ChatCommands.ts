/**
 * Chat commands handled before the agent, as OpenClaw's text commands: a
 * message that is only a command (`/new`, `/reset`, `/status`, `/stop`,
 * `/model`, `/think`, `/compact`, `/help`) is parsed here and never sent to
 * the model. Rules: the message starts with `/`, the name is matched without
 * regard to case and may be followed by `:` (`/think: high`), aliases map to
 * their command (`/thinking`, `/t`). A `/word` that is not a command, or a
 * command inside other text, is plain text.
 *
 * Parsing only; running a command against a session comes with the channel
 * service.
 */
import { Schema } from "effect"
import { type BeamclawConfig, ThinkingLevel } from "../config/ConfigSchema.ts"

/** A parsed chat command. Optional arguments are absent when not given. */
export const ChatCommand = Schema.TaggedUnion({
  /**
   * Archive the session and start a fresh one. `args` may start with a model,
   * and what is not a model is the first message: which is which depends on
   * the configured models, so `resolveNewArgs` decides it, not the parser.
   */
  New: { args: Schema.optionalKey(Schema.String) },
  /** Reset the session in place; any text after it is the first message. */
  Reset: { message: Schema.optionalKey(Schema.String) },
  Status: {},
  /** Abort the running turn. */
  Stop: {},
  /** Show the model (no name) or switch to `name`. */
  Model: { name: Schema.optionalKey(Schema.String) },
  /** Show the thinking level (no argument) or set it; `unknownLevel` holds an argument that is not a level. */
  Think: { level: Schema.optionalKey(ThinkingLevel), unknownLevel: Schema.optionalKey(Schema.String) },
  /** Compact the transcript now, with optional instructions for the summary. */
  Compact: { instructions: Schema.optionalKey(Schema.String) },
  Help: {}
})
export type ChatCommand = typeof ChatCommand.Type
export type ChatCommandName = ChatCommand["_tag"]

const NAMES: ReadonlyMap<string, ChatCommandName> = new Map([
  ["new", "New"],
  ["reset", "Reset"],
  ["status", "Status"],
  ["stop", "Stop"],
  ["model", "Model"],
  ["think", "Think"],
  ["thinking", "Think"],
  ["t", "Think"],
  ["compact", "Compact"],
  ["help", "Help"]
])

const isThinkingLevel = Schema.is(ThinkingLevel)

// `/name`, an optional `:`, then the arguments (which may span lines, as /compact instructions do).
const COMMAND = /^\/([a-z][a-z0-9_-]*)(?::|(?=\s)|$)\s*([\s\S]*)$/i

/** Discord user mentions (`<@id>`, `<@!id>`): a guild message addressed to the bot starts with one. */
const USER_MENTION = /<@!?\d+>/g

/**
 * The text commands are read from, as OpenClaw's `BodyForCommands`: user
 * mentions removed and the rest trimmed, so `<@bot> /status` is `/status`.
 */
export const commandBody = (text: string): string => text.replace(USER_MENTION, " ").trim()

const nonEmpty = (text: string): string | undefined => {
  const trimmed = text.trim()
  return trimmed === "" ? undefined : trimmed
}

/** The command `text` is, or `undefined` when it is plain text for the agent. */
export const parseChatCommand = (text: string): ChatCommand | undefined => {
  const match = COMMAND.exec(text.trim())
  if (match === null) return undefined
  const name = NAMES.get((match[1] ?? "").toLowerCase())
  if (name === undefined) return undefined
  const args = nonEmpty(match[2] ?? "")
  switch (name) {
    case "New":
      return ChatCommand.cases.New.make(args === undefined ? {} : { args })
    case "Reset":
      return ChatCommand.cases.Reset.make(args === undefined ? {} : { message: args })
    case "Status":
      return ChatCommand.cases.Status.make({})
    case "Stop":
      return ChatCommand.cases.Stop.make({})
    case "Help":
      return ChatCommand.cases.Help.make({})
    case "Model":
      return ChatCommand.cases.Model.make(args === undefined ? {} : { name: args })
    case "Think": {
      if (args === undefined) return ChatCommand.cases.Think.make({})
      const level = args.toLowerCase()
      return isThinkingLevel(level)
        ? ChatCommand.cases.Think.make({ level })
        : ChatCommand.cases.Think.make({ unknownLevel: args })
    }
    case "Compact":
      return ChatCommand.cases.Compact.make(args === undefined ? {} : { instructions: args })
  }
}

/** The message is a command on its own (after `commandBody`): the control-command fact for mention and command gates. */
export const isControlCommand = (text: string): boolean => parseChatCommand(commandBody(text)) !== undefined

/**
 * The models `/new <model>` may switch to, as OpenClaw's allowed model set:
 * the keys of `agents.defaults.models` when that map is set (it is then the
 * allowlist), else those plus the agent's own chain and the models listed
 * under `models.providers`; with no allowlist, any `provider/model` of a known
 * provider is accepted too.
 */
export interface ModelCatalog {
  /** `provider/model` ids, the agent's own chain first. */
  readonly models: ReadonlyArray<string>
  /** Lower-cased alias → `provider/model`. */
  readonly aliases: ReadonlyMap<string, string>
  /** Lower-cased provider ids. */
  readonly providers: ReadonlySet<string>
  /** Only `models` may be chosen. */
  readonly restricted: boolean
}

const BUILT_IN_PROVIDERS = ["anthropic", "openai"]

const providerOf = (ref: string): string => ref.slice(0, Math.max(0, ref.indexOf("/"))).toLowerCase()

export const modelCatalogOf = (config: BeamclawConfig, agentId: string): ModelCatalog => {
  const selection = config.agents.list.find((agent) => agent.id === agentId)?.model ?? config.agents.defaults.model
  const chain = [selection.primary, ...selection.fallbacks]
  const listed = Object.keys(config.agents.defaults.models)
  const restricted = listed.length > 0
  const providerModels = Object.entries(config.models.providers).flatMap(([id, provider]) => provider.models.map((model) => `${id}/${model.id}`))
  const models = [...new Set(restricted ? [...chain, ...listed] : [...chain, ...listed, ...providerModels])]
  const aliases = new Map<string, string>()
  for (const [ref, entry] of Object.entries(config.agents.defaults.models)) {
    if (entry.alias !== undefined) aliases.set(entry.alias.toLowerCase(), ref)
  }
  const providers = new Set([...BUILT_IN_PROVIDERS, ...Object.keys(config.models.providers).map((id) => id.toLowerCase()), ...models.map(providerOf).filter((p) => p !== "")])
  return { models, aliases, providers, restricted }
}

/** Drops the first `count` words of `text`, keeping the rest as written (line breaks included). */
const dropWords = (text: string, count: number): string => {
  let rest = text.trim()
  for (let i = 0; i < count; i++) rest = rest.replace(/^\S+\s*/, "")
  return rest
}

/**
 * Splits `/new` arguments into a model and a first message, by OpenClaw's
 * rule (`session-reset-model`): the start is a model only when it names one
 * the session may use — `<provider> <model>` as two words, a model alias, a
 * `provider/model` id, or (fuzzy) a provider name (its first model) or a
 * word of six or more characters that is part of a model id (the agent's own
 * models first) — and everything else is the message. `/new summarize this` starts a session with the message
 * "summarize this"; `/new sonnet hello` switches to the sonnet model.
 */
export const resolveNewArgs = (args: string | undefined, catalog: ModelCatalog): { readonly model?: string; readonly message?: string } => {
  const text = args?.trim() ?? ""
  if (text === "") return {}
  const [first = "", second] = text.split(/\s+/)
  const allowed = (ref: string): string | undefined => {
    const exact = catalog.models.find((model) => model.toLowerCase() === ref.toLowerCase())
    if (exact !== undefined) return exact
    const slash = ref.indexOf("/")
    // Without an allowlist any model of a known provider may be named in full.
    if (!catalog.restricted && slash > 0 && slash < ref.length - 1 && catalog.providers.has(ref.slice(0, slash).toLowerCase())) return ref
    return undefined
  }
  const result = (model: string, consumed: number) => {
    const message = dropWords(text, consumed)
    return message === "" ? { model } : { model, message }
  }
  // `<provider> <model>`, when that model is one the session may use ("/new openai is great" is a message).
  if (second !== undefined && catalog.providers.has(first.toLowerCase())) {
    const composite = `${first}/${second}`.toLowerCase()
    const model = catalog.models.find((ref) => ref.toLowerCase() === composite)
    if (model !== undefined) return result(model, 2)
  }
  // An alias, or an explicit `provider/model`.
  const aliased = catalog.aliases.get(first.toLowerCase())
  if (aliased !== undefined) return result(aliased, 1)
  const explicit = first.includes("/") ? allowed(first) : undefined
  if (explicit !== undefined) return result(explicit, 1)
  // Fuzzy: a provider name picks its first model; a long enough word must be part of a model id.
  const word = first.toLowerCase()
  if (catalog.providers.has(word)) {
    const model = catalog.models.find((ref) => providerOf(ref) === word)
    if (model !== undefined) return result(model, 1)
  } else if (word.length >= 6 && !word.includes("/")) {
    const model = catalog.models.find((ref) => ref.slice(ref.indexOf("/") + 1).toLowerCase().includes(word))
    if (model !== undefined) return result(model, 1)
  }
  return { message: text }
}
