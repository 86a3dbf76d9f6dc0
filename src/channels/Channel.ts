/**
 * What a chat channel (Discord, later others) provides to the channel layer:
 * its accounts for a config, and for each account a connection that runs
 * until its scope closes. Everything channel-independent — routing, access
 * control, chat commands, de-duplication, chunking, delivery with retries —
 * lives in the channel layer around it, so an implementation only speaks its
 * platform's protocol.
 */
import type { Effect, Scope } from "effect"
import { Schema } from "effect"
import type { BeamclawConfig } from "../config/ConfigSchema.ts"
import type { InboundMessage } from "./InboundMessage.ts"

/**
 * A connection failed. `fatal` marks failures that a restart cannot fix
 * (an invalid token, a disallowed intent): the supervisor stops the account
 * with this error as its status instead of reconnecting in a loop.
 */
export class ChannelError extends Schema.TaggedError<ChannelError>()("ChannelError", {
  channel: Schema.String,
  accountId: Schema.String,
  message: Schema.String,
  fatal: Schema.Boolean
}) {}

/**
 * A send failed. `retryAfterMs` is the platform's own hint (Discord's retry_after).
 * `notSent`: the platform provably did not act on the request (it refused it,
 * or it never left this process: connection refused, checked before sending);
 * without it a failure may have been a success whose answer was lost.
 */
export class SendError extends Schema.TaggedError<SendError>()("SendError", {
  message: Schema.String,
  retryable: Schema.Boolean,
  retryAfterMs: Schema.optionalKey(Schema.Number),
  notSent: Schema.optionalKey(Schema.Boolean)
}) {}

/** Where a reply goes: a conversation on the platform (Discord: a channel id, DM channels included). */
export interface ChannelTarget {
  readonly chatId: string
}

/** A file sent with a message. */
export interface OutboundFile {
  readonly name: string
  readonly data: Uint8Array
  readonly contentType?: string | undefined
}

export interface OutboundMessage {
  readonly target: ChannelTarget
  readonly text: string
  readonly files?: ReadonlyArray<OutboundFile> | undefined
  /** The platform message this one answers (Discord message_reference), per replyToMode. */
  readonly replyTo?: string | undefined
  /**
   * Stable for this piece of this reply across retries, reconnects and restarts:
   * the platform drops a repeat (Discord: nonce with enforce_nonce).
   */
  readonly idempotencyKey: string
  /**
   * Answer a native command through its interaction instead of posting in the
   * chat: the first piece fills the deferred answer, the others are follow-ups.
   */
  readonly interaction?: OutboundInteraction | undefined
  /**
   * The platform cannot drop a repeat of this piece (Discord's interaction
   * follow-ups take no nonce): it is sent at most once. A failure that may
   * have reached the platform is not retried, and an attempt whose outcome a
   * crash left unknown is not repeated; both go to the dead-letter log.
   */
  readonly atMostOnce?: boolean | undefined
}

export interface OutboundInteraction {
  readonly id: string
  readonly token: string
  readonly applicationId: string
  readonly ephemeral: boolean
  /** When the interaction was created (epoch ms): its token expires 15 minutes later on Discord. */
  readonly createdAt: number
  /** This piece is the interaction's original (deferred) answer, not a follow-up. */
  readonly original: boolean
}

/** The outbound side of a live connection. */
export interface ChannelConnection {
  /** The bot's own user id on the platform (mention detection, ignoring its own messages). */
  readonly selfId: string | undefined
  readonly send: (message: OutboundMessage) => Effect.Effect<{ readonly messageId: string }, SendError>
  /** Shows "typing…" once; platforms expire it (Discord after ~10 s), so callers refresh it. */
  readonly typing: (target: ChannelTarget) => Effect.Effect<void, SendError>
  readonly react: (target: ChannelTarget, messageId: string, emoji: string) => Effect.Effect<void, SendError>
  /** The conversation for direct messages with a user (Discord: the DM channel, created if needed). */
  readonly openDirect: (userId: string) => Effect.Effect<ChannelTarget, SendError>
}

/** What a running connection reports to its supervisor; the supervisor turns it into the account's status. */
export interface AccountReporter {
  /** The platform session is up (Discord READY / RESUMED) or down (disconnected, resuming). */
  readonly connected: (up: boolean) => Effect.Effect<void>
  /** A transient problem the connection recovered from by itself (shown as lastError, not a restart). */
  readonly problem: (message: string) => Effect.Effect<void>
  readonly inbound: Effect.Effect<void>
  readonly outbound: Effect.Effect<void>
}

/** What the channel layer gives a running connection: where inbound goes, where the outbound side is registered. */
export interface AccountEndpoint {
  /** Hands an inbound message to the channel layer; returns at once, never waiting on a turn. */
  readonly receive: (message: InboundMessage) => Effect.Effect<void>
  /** Registers the connection's outbound side once it can send, until the scope (the connection's run) closes. */
  readonly attach: (connection: ChannelConnection) => Effect.Effect<void, never, Scope.Scope>
}

export interface AccountContext extends AccountReporter, AccountEndpoint {}

/** One configured account of one channel, ready to run. */
export interface ChannelAccount {
  readonly channel: string
  readonly accountId: string
  /**
   * Connects and serves until the scope closes (the scope's finalizer is the
   * stop) or the connection fails for good. Never returns normally.
   */
  readonly run: (reporter: AccountReporter) => Effect.Effect<never, ChannelError, Scope.Scope>
}

/** A channel implementation: which accounts a config enables, and how to run each. */
export interface ChannelPlugin<R = never> {
  readonly id: string
  /** The enabled accounts in this config (none when the channel is off or not configured). */
  readonly accounts: (config: BeamclawConfig) => Effect.Effect<ReadonlyArray<ChannelAccount>, never, R>
  /** The part of the config whose change restarts this channel's accounts. */
  readonly configOf: (config: BeamclawConfig) => unknown
}
