/**
 * Discord as a channel plugin: the accounts `channels.discord` enables, each
 * run as a DiscordAccount bound to the channel layer. The default account's
 * token comes from `channels.discord.token`, else DISCORD_BOT_TOKEN; a named
 * account's from `channels.discord.accounts.<id>.token`.
 */
import { Config, Effect, Option, Redacted } from "effect"
import type { BeamclawConfig } from "../../config/ConfigSchema.ts"
import { type ChannelAccount, ChannelError, type ChannelPlugin } from "../Channel.ts"
import { type AccountSettings, ChannelHost, type DiscordSection, discordSettingsOf } from "../ChannelHost.ts"
import { DEFAULT_ACCOUNT_ID, normalizeAccountId } from "../Routing.ts"
import * as DiscordAccount from "./DiscordAccount.ts"
import { nativeCommandsEnabled } from "./NativeCommands.ts"

const tokenFromEnv = Config.option(Config.String("DISCORD_BOT_TOKEN")).pipe(Config.map(Option.getOrUndefined))

/**
 * The accounts `channels.discord` enables: one `default` account from its keys,
 * or, when `accounts` names some, each enabled one with its own keys over the
 * shared ones (OpenClaw's multi-account Discord).
 */
export const discordAccounts = (discord: DiscordSection): ReadonlyArray<{ readonly accountId: string; readonly settings: DiscordSection }> => {
  if (!discord.enabled) return []
  const named = Object.entries(discord.accounts)
  if (named.length === 0) return [{ accountId: DEFAULT_ACCOUNT_ID, settings: discord }]
  const seen = new Set<string>()
  const accounts: Array<{ readonly accountId: string; readonly settings: DiscordSection }> = []
  for (const [rawId, account] of named) {
    const accountId = normalizeAccountId(rawId)
    if (account.enabled === false || seen.has(accountId)) continue
    seen.add(accountId)
    const { intents, enabled: _enabled, ...overrides } = account
    // A named account has its own token or none: the shared token is not borrowed by every bot.
    const { token: _sharedToken, ...shared } = discord
    accounts.push({
      accountId,
      settings: { ...shared, ...overrides, intents: { messageContent: intents?.messageContent ?? discord.intents.messageContent } }
    })
  }
  return accounts
}

export const plugin: ChannelPlugin<ChannelHost> = {
  id: DiscordAccount.CHANNEL_ID,
  configOf: (config) => ({ discord: config.channels.discord, native: config.commands.native }),
  accounts: (config: BeamclawConfig) =>
    Effect.gen(function*() {
      const host = yield* ChannelHost
      const fromEnv = yield* tokenFromEnv.pipe(Effect.orElseSucceed(() => undefined))
      return discordAccounts(config.channels.discord).map(({ accountId, settings: discord }): ChannelAccount => {
        // DISCORD_BOT_TOKEN stands in for the single (default) account's token only.
        const token = discord.token ?? (accountId === DEFAULT_ACCOUNT_ID && fromEnv !== undefined && fromEnv !== "" ? Redacted.make(fromEnv) : undefined)
        return {
          channel: DiscordAccount.CHANNEL_ID,
          accountId,
          run: (reporter) =>
            Effect.gen(function*() {
              if (token === undefined || Redacted.value(token).trim() === "") {
                return yield* new ChannelError({
                  channel: DiscordAccount.CHANNEL_ID,
                  accountId,
                  message: accountId === DEFAULT_ACCOUNT_ID
                    ? "no bot token: set channels.discord.token in the config or DISCORD_BOT_TOKEN in the environment"
                    : `no bot token: set channels.discord.accounts.${accountId}.token`,
                  fatal: true
                })
              }
              // An edit under channels.discord restarts the accounts (configOf), so these settings are current for a run.
              const settings: Effect.Effect<AccountSettings> = Effect.succeed(discordSettingsOf(discord))
              const endpoint = yield* host.bind(DiscordAccount.CHANNEL_ID, accountId, settings)
              return yield* DiscordAccount.run(
                {
                  accountId,
                  token,
                  apiBaseUrl: discord.apiBaseUrl,
                  messageContentIntent: discord.intents.messageContent,
                  nativeCommands: nativeCommandsEnabled(config.commands.native, discord),
                  ephemeral: discord.slashCommand.ephemeral
                },
                { ...reporter, ...endpoint }
              )
            })
        }
      })
    })
}
