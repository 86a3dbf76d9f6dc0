/**
 * OpenClaw's last route: when a channel message is accepted for a session,
 * the session remembers where it came from (`lastChannel`, `lastTo`,
 * `lastAccountId`, `lastThreadId`, `deliveryContext`), so an answer made
 * outside that conversation (WS `agent` with `deliver` and no `to`, later
 * heartbeats and cron) can go back there.
 *
 * Main-DM pinning (`channel-routing.md`): under `dmScope: main` every DM
 * shares the main session; when `allowFrom` names exactly one owner (no
 * wildcard), DMs from anyone else still reach the session but do not move
 * its last route, so the owner's answers never go to a stranger.
 */
import type { DeliveryContext } from "../session/SessionStore.ts"
import { normalizeDiscordAllowEntry } from "./Access.ts"
import type { InboundMessage } from "./InboundMessage.ts"

/**
 * Where a reply to this message goes later (OpenClaw's OriginatingTo):
 * `user:<sender>` for a DM, so a send opens the DM again; `channel:<chat>`
 * for a guild channel or a thread (a thread is a channel of its own).
 */
export const routeOf = (message: InboundMessage): DeliveryContext => ({
  channel: message.channel,
  to: message.chatType === "direct" ? `user:${message.senderId}` : `channel:${message.chatId}`,
  accountId: message.accountId,
  ...(message.threadId === undefined ? {} : { threadId: message.threadId })
})

/**
 * OpenClaw's `resolvePinnedMainDmOwnerFromAllowlist`: the one owner of the
 * main DM session, or undefined when DMs are not in the main session, the
 * list has a wildcard, or it names no one or several.
 */
export const pinnedMainDmOwner = (dmScope: string, allowFrom: ReadonlyArray<string>): string | undefined => {
  if (dmScope !== "main") return undefined
  if (allowFrom.some((entry) => entry.trim() === "*")) return undefined
  const owners = new Set(allowFrom.map(normalizeDiscordAllowEntry).filter((entry) => entry !== ""))
  if (owners.has("*") || owners.size !== 1) return undefined
  return [...owners][0]
}

export interface LastRouteInput {
  readonly message: InboundMessage
  /** The session the message was routed to, and the agent's main session. */
  readonly sessionKey: string
  readonly mainSessionKey: string
  /** The account's DM allow list (`allowFrom`), not the pairing approvals. */
  readonly allowFrom: ReadonlyArray<string>
}

/** Whether this accepted message moves its session's last route. */
export const updatesLastRoute = (input: LastRouteInput): boolean => {
  const { message } = input
  if (message.chatType !== "direct" || input.sessionKey !== input.mainSessionKey) return true
  // A DM in the main session means dmScope main (the route put it there).
  const owner = pinnedMainDmOwner("main", input.allowFrom)
  return owner === undefined || owner === message.senderId
}
