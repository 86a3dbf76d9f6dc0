/**
 * The chat commands as Discord slash commands (OpenClaw's native commands):
 * their definitions, whether they are on (`commands.native`, overridden by
 * `channels.discord.commands.native`; "auto" is on for Discord), the text a
 * slash command stands for (so it goes through the same parsing, access
 * control and handling as the typed command), and keeping the application's
 * registered commands in step with the definitions without re-registering
 * what is already there.
 */
import type * as DiscordJs from "discord.js"
import type { ApplicationCommand, ChatInputApplicationCommandData, ChatInputCommandInteraction, Client } from "discord.js"
import { Effect } from "effect"
import type { BeamclawConfig } from "../../config/ConfigSchema.ts"
import type { DiscordSection } from "../ChannelHost.ts"

type NativeSetting = BeamclawConfig["commands"]["native"]

/** Whether Discord registers and answers slash commands: the channel's setting, else the global one; "auto" is on. */
export const nativeCommandsEnabled = (global: NativeSetting, discord: DiscordSection): boolean => {
  const setting = discord.commands?.native ?? global
  return setting === "auto" ? true : setting
}

/** The slash command names, each with its one optional option (the command's arguments). */
export const NATIVE_COMMANDS: ReadonlyArray<{
  readonly name: string
  readonly description: string
  readonly option?: { readonly name: string; readonly description: string; readonly choices?: ReadonlyArray<string> }
}> = [
  { name: "new", description: "Start a fresh session, optionally on another model or with a first message", option: { name: "input", description: "A model and/or the first message" } },
  { name: "reset", description: "Reset this conversation's session", option: { name: "message", description: "The first message after the reset" } },
  { name: "status", description: "Show this conversation's session: model, thinking, tokens" },
  { name: "stop", description: "Stop the running reply" },
  { name: "model", description: "Show or set the model", option: { name: "name", description: "provider/model or an alias" } },
  {
    name: "think",
    description: "Show or set the thinking level",
    option: { name: "level", description: "The thinking level", choices: ["off", "minimal", "low", "medium", "high", "xhigh"] }
  },
  { name: "compact", description: "Summarise the older part of this conversation now", option: { name: "instructions", description: "What the summary should focus on" } },
  { name: "help", description: "List the commands" }
]

const NAMES: ReadonlySet<string> = new Set(NATIVE_COMMANDS.map((command) => command.name))

export const isNativeCommandName = (name: string): boolean => NAMES.has(name)

/** The definitions as discord.js takes them; installed in guilds, usable in guilds and the bot's DMs. */
export const nativeCommandData = (discord: typeof DiscordJs): Array<ChatInputApplicationCommandData> =>
  NATIVE_COMMANDS.map((command) => ({
    name: command.name,
    description: command.description,
    type: discord.ApplicationCommandType.ChatInput,
    integrationTypes: [discord.ApplicationIntegrationType.GuildInstall],
    contexts: [discord.InteractionContextType.Guild, discord.InteractionContextType.BotDM],
    options: command.option === undefined ? [] : [{
      type: discord.ApplicationCommandOptionType.String,
      name: command.option.name,
      description: command.option.description,
      required: false,
      ...(command.option.choices === undefined ? {} : { choices: command.option.choices.map((choice) => ({ name: choice, value: choice })) })
    }]
  }))

/** The typed command a slash command stands for (`/think high`), parsed and authorized like one. */
export const commandTextOf = (interaction: ChatInputCommandInteraction): string => {
  const value = interaction.options.data[0]?.value
  const text = value === undefined || value === null ? "" : String(value).trim()
  return text === "" ? `/${interaction.commandName}` : `/${interaction.commandName} ${text}`
}

const messageOf = (error: unknown): string => error instanceof Error ? error.message : String(error)

export type SyncOutcome = "unchanged" | "registered" | "removed"

/**
 * Brings the application's commands in step with ours: nothing is written
 * when they already match (a restart costs one GET, not a re-registration,
 * which is what brought OpenClaw 429 bursts). When the application has only
 * our commands, one bulk PUT (`commands.set`) replaces them; commands that are
 * not ours are left alone (ours are created or deleted one by one then).
 * Turned off, ours are deleted.
 */
export const syncNativeCommands = (client: Client, discord: typeof DiscordJs, enabled: boolean) =>
  Effect.gen(function*() {
    const application = client.application
    if (application === null) return yield* Effect.fail("the READY payload named no application")
    const registered = yield* Effect.tryPromise({ try: () => application.commands.fetch(), catch: messageOf })
    const all: Array<ApplicationCommand> = [...registered.values()]
    const ours = all.filter((command) => NAMES.has(command.name))
    const foreign = all.filter((command) => !NAMES.has(command.name))
    const desired = enabled ? nativeCommandData(discord) : []
    const stale = ours.filter((command) => !desired.some((data) => data.name === command.name))
    const changed = desired.filter((data) => !ours.some((command) => command.equals(data, true)))
    if (stale.length === 0 && changed.length === 0) return "unchanged" satisfies SyncOutcome
    if (enabled && foreign.length === 0) {
      yield* Effect.tryPromise({ try: () => application.commands.set(desired), catch: messageOf })
      return "registered" satisfies SyncOutcome
    }
    for (const data of changed) yield* Effect.tryPromise({ try: () => application.commands.create(data), catch: messageOf })
    for (const command of stale) yield* Effect.tryPromise({ try: () => application.commands.delete(command.id), catch: messageOf })
    return enabled ? "registered" satisfies SyncOutcome : "removed" satisfies SyncOutcome
  })
