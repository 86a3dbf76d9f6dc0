/**
 * Discord as a channel plugin: the accounts `channels.discord` enables (one,
 * `default`, for now), each run as a DiscordAccount bound to the channel
 * layer. The token comes from `channels.discord.token`, else DISCORD_BOT_TOKEN.
 */
import { Config, Effect, Option, Redacted } from "effect"
import type { BeamclawConfig } from "../../config/ConfigSchema.ts"
import { type ChannelAccount, ChannelError, type ChannelPlugin } from "../Channel.ts"
import { type AccountSettings, ChannelHost, discordSettingsOf } from "../ChannelHost.ts"
import { DEFAULT_ACCOUNT_ID } from "../Routing.ts"
import * as DiscordAccount from "./DiscordAccount.ts"

const tokenFromEnv = Config.option(Config.String("DISCORD_BOT_TOKEN")).pipe(Config.map(Option.getOrUndefined))

export const plugin: ChannelPlugin<ChannelHost> = {
  id: DiscordAccount.CHANNEL_ID,
  configOf: (config) => config.channels.discord,
  accounts: (config: BeamclawConfig) =>
    Effect.gen(function*() {
      const discord = config.channels.discord
      if (!discord.enabled) return []
      const host = yield* ChannelHost
      const fromEnv = yield* tokenFromEnv.pipe(Effect.orElseSucceed(() => undefined))
      const token = discord.token ?? (fromEnv === undefined ? undefined : Redacted.make(fromEnv))
      const accountId = DEFAULT_ACCOUNT_ID
      const account: ChannelAccount = {
        channel: DiscordAccount.CHANNEL_ID,
        accountId,
        run: (reporter) =>
          Effect.gen(function*() {
            if (token === undefined || Redacted.value(token).trim() === "") {
              return yield* new ChannelError({
                channel: DiscordAccount.CHANNEL_ID,
                accountId,
                message: "no bot token: set channels.discord.token in the config or DISCORD_BOT_TOKEN in the environment",
                fatal: true
              })
            }
            // An edit under channels.discord restarts the account (configOf), so these settings are current for its run.
            const settings: Effect.Effect<AccountSettings> = Effect.succeed(discordSettingsOf(config))
            const endpoint = yield* host.bind(DiscordAccount.CHANNEL_ID, accountId, settings)
            return yield* DiscordAccount.run(
              { accountId, token, apiBaseUrl: discord.apiBaseUrl, messageContentIntent: discord.intents.messageContent },
              { ...reporter, ...endpoint }
            )
          })
      }
      return [account]
    })
}
