/**
 * The status of one channel account, as channels.status, `beamclaw channels
 * status` and the typed RPC show it. Schema only, so clients can decode it.
 */
import { Schema } from "effect"

export const AccountState = Schema.Literals(["starting", "connected", "disconnected", "backoff", "failed"])
export type AccountState = typeof AccountState.Type

export const AccountStatus = Schema.Struct({
  channel: Schema.String,
  accountId: Schema.String,
  state: AccountState,
  running: Schema.Boolean,
  connected: Schema.Boolean,
  /** Restarts since the connection last reached its platform. */
  reconnectAttempts: Schema.Number,
  lastError: Schema.optional(Schema.String),
  lastStartAt: Schema.optional(Schema.Number),
  lastConnectedAt: Schema.optional(Schema.Number),
  lastDisconnectAt: Schema.optional(Schema.Number),
  lastInboundAt: Schema.optional(Schema.Number),
  lastOutboundAt: Schema.optional(Schema.Number),
  nextRetryAt: Schema.optional(Schema.Number)
})
export type AccountStatus = typeof AccountStatus.Type
