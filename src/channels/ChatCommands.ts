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
import { ThinkingLevel } from "../config/ConfigSchema.ts"

/** A parsed chat command. Optional arguments are absent when not given. */
export const ChatCommand = Schema.TaggedUnion({
  /** Archive the session and start a fresh one; the first word may name a model, the rest is a first message. */
  New: { model: Schema.optionalKey(Schema.String), message: Schema.optionalKey(Schema.String) },
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
    case "New": {
      if (args === undefined) return ChatCommand.cases.New.make({})
      const [model = ""] = args.split(/\s+/)
      const message = nonEmpty(args.slice(model.length))
      return ChatCommand.cases.New.make({ model, ...(message === undefined ? {} : { message }) })
    }
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
