/**
 * What happens to one inbound message before any turn, as OpenClaw's
 * Discord preflight: bot messages, DM policy and pairing, the guild
 * allowlist, mention gating, chat commands and their authorization, then
 * routing to an agent and a session key. Pure: the caller supplies the
 * pairing approvals and the bot's own id, and acts on the verdict.
 */
import { Result } from "effect"
import * as Access from "./Access.ts"
import { type ChatCommand, commandBody, parseChatCommand } from "./ChatCommands.ts"
import type { InboundMessage } from "./InboundMessage.ts"
import { type ResolvedRoute, type RouteConfig, resolveAgentRoute, routeInputOf } from "./Routing.ts"

/** The Discord settings preflight reads (from `channels.discord`). */
export interface DiscordPolicy {
  readonly dmPolicy: Access.DmPolicy
  readonly allowFrom: ReadonlyArray<string>
  readonly groupPolicy: Access.GroupPolicy
  readonly guilds: Readonly<Record<string, Access.DiscordGuildEntry>>
  readonly allowBots: Access.AllowBots
}

export type DropReason =
  | "own_message"
  | "bot_not_allowed"
  | "bot_not_mentioned"
  | Access.AccessBlockReason
  | Access.DiscordGuildAccessReason
  | "not_mentioned"
  | "unauthorized_command"
  | "empty"
  | "invalid_route"

export type Verdict =
  /** Ignored; `reason` is logged, the sender is not told (as OpenClaw). */
  | { readonly _tag: "Drop"; readonly reason: DropReason; readonly detail?: string | undefined }
  /** An unknown DM sender under dmPolicy pairing: issue (or refresh) a pairing code; the message is not processed. */
  | { readonly _tag: "Pair" }
  /** A chat command from an authorized sender, handled before the agent. */
  | { readonly _tag: "Command"; readonly command: ChatCommand; readonly route: ResolvedRoute }
  /** A message for the agent. `mentioned` drives the ack reaction. */
  | { readonly _tag: "Turn"; readonly route: ResolvedRoute; readonly mentioned: boolean }

export interface PreflightInput {
  readonly message: InboundMessage
  readonly policy: DiscordPolicy
  readonly routeConfig: RouteConfig
  /** Senders approved through pairing for this account. */
  readonly pairedAllowFrom: ReadonlyArray<string>
  readonly botUserId: string | undefined
}

export const preflight = (input: PreflightInput): Verdict => {
  const { message, policy } = input
  const isDirect = message.chatType === "direct"
  const bot = Access.botMessageDecision({
    senderId: message.senderId,
    botUserId: input.botUserId,
    isBot: message.isBot,
    allowBots: policy.allowBots,
    isDirect,
    wasMentioned: message.wasMentioned,
    replyToBot: message.replyToBot
  })
  if (!bot.allow) return { _tag: "Drop", reason: bot.reason }

  const text = commandBody(message.body)
  const command = parseChatCommand(text)
  const isSenderAllowed = (list: ReadonlyArray<string>) => Access.discordSenderAllowed(list, message.senderId)

  let authorized: boolean
  if (isDirect) {
    const access = Access.dmGroupAccessDecision({
      isGroup: false,
      dmPolicy: policy.dmPolicy,
      groupPolicy: policy.groupPolicy,
      allowFrom: policy.allowFrom,
      storeAllowFrom: input.pairedAllowFrom,
      groupAllowFrom: [],
      isSenderAllowed
    })
    if (access.decision === "pairing") return { _tag: "Pair" }
    if (access.decision === "block") return { _tag: "Drop", reason: access.reason }
    authorized = Access.discordCommandAuthorized({ chatType: "direct", dmAccess: access, allowFrom: policy.allowFrom, senderId: message.senderId })
  } else {
    const guild = Access.discordGuildAccess({
      groupPolicy: policy.groupPolicy,
      guilds: policy.guilds,
      guildId: message.guildId ?? "",
      guildName: message.guildName,
      channelId: message.chatId,
      channelName: message.chatName,
      parentId: message.parentId,
      parentName: message.parentName,
      isThread: message.threadId !== undefined,
      senderId: message.senderId,
      memberRoleIds: message.memberRoleIds
    })
    if (!guild.allowed) return { _tag: "Drop", reason: guild.reason }
    authorized = Access.discordCommandAuthorized({ chatType: message.chatType, allowFrom: policy.allowFrom, senderId: message.senderId, guildAccess: guild })
    const gate = Access.mentionGate({
      isGroup: true,
      requireMention: guild.requireMention,
      canDetectMention: input.botUserId !== undefined,
      wasMentioned: message.wasMentioned,
      hasAnyMention: message.hasAnyMention,
      implicitMention: message.replyToBot,
      hasControlCommand: command !== undefined,
      commandAuthorized: authorized
    })
    if (gate.shouldSkip) return { _tag: "Drop", reason: "not_mentioned" }
  }

  if (command !== undefined && Access.controlCommandGate({ hasControlCommand: true, commandAuthorized: authorized }).shouldBlock) {
    return { _tag: "Drop", reason: "unauthorized_command" }
  }
  if (text === "" && message.attachments.length === 0) return { _tag: "Drop", reason: "empty" }

  const route = resolveAgentRoute(routeInputOf(message), input.routeConfig)
  if (Result.isFailure(route)) return { _tag: "Drop", reason: "invalid_route", detail: route.failure.message }
  if (command !== undefined) return { _tag: "Command", command, route: route.success }
  return { _tag: "Turn", route: route.success, mentioned: message.wasMentioned || message.replyToBot }
}
