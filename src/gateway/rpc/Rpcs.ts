/**
 * The typed RPC protocol of the gateway (effect/rpc over WebSocket at /rpc):
 * the procedures, their payload, success and error schemas, and the auth
 * middleware tag. Clients import this module (through `beamclaw/client`), so
 * it holds schemas only: nothing here may import server code, Node modules
 * or anything beyond `effect` and other schema-only modules.
 */
import { Schema } from "effect"
import { Rpc, RpcGroup, RpcMiddleware } from "effect/rpc"
import { UnknownAgent } from "../../agent/AgentDirectory.ts"
import { ImagePart } from "../../agent/Message.ts"
import { SessionCrashed, SessionUnavailable, TurnAborted, TurnEvent, TurnTimeout } from "../../agent/TurnEvent.ts"
import { ProviderError } from "../../provider/Provider.ts"
import { InvalidSessionKey } from "../../session/SessionKey.ts"
import { CleanupSummary } from "../../session/CleanupSummary.ts"
import { SessionEntry, StoreError } from "../../session/SessionStore.ts"
import { Entry, TranscriptInvariantError } from "../../session/Transcript.ts"
import { AuthFailed } from "../auth/GatewayAuth.ts"
import { AccountStatus } from "../../channels/AccountStatus.ts"
import { ChannelPairingStoreError, InvalidPairingTarget, PairingCodeNotFound, PairingRequest } from "../../channels/PairingSchemas.ts"
import { ConfigConflict, ConfigInvalid, ConfigProblem, ConfigWriteFailed } from "../../config/ConfigErrors.ts"

export {
  AuthFailed,
  CleanupSummary,
  Entry,
  InvalidSessionKey,
  ProviderError,
  SessionCrashed,
  SessionEntry,
  SessionUnavailable,
  StoreError,
  TranscriptInvariantError,
  TurnAborted,
  TurnEvent,
  TurnTimeout,
  UnknownAgent
}

// ---------------------------------------------------------------------------
// Errors of this protocol (the rest are the session layer's own)
// ---------------------------------------------------------------------------

/** The payload was well-formed but not acceptable (empty text, say). */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  message: Schema.String
}) {}

export { ConfigConflict, ConfigInvalid, ConfigProblem, ConfigWriteFailed }

// ---------------------------------------------------------------------------
// Shared shapes
// ---------------------------------------------------------------------------

/**
 * Which session: `sessionKey` as OpenClaw's clients send it (empty or `main`
 * is the agent's main session, `agent:<id>:...` is kept, anything else goes
 * under the agent's namespace), `agentId` defaulting to the default agent.
 */
const sessionTarget = {
  sessionKey: Schema.optionalKey(Schema.String),
  agentId: Schema.optionalKey(Schema.String)
}

/** A turn failed for one of these reasons; the session itself carries on. */
export const TurnFailure = Schema.Union([
  ProviderError,
  TurnTimeout,
  TurnAborted,
  SessionCrashed,
  SessionUnavailable,
  StoreError,
  TranscriptInvariantError
])
export type TurnFailure = typeof TurnFailure.Type

export const SessionRow = Schema.Struct({
  key: Schema.String,
  live: Schema.Boolean,
  entry: SessionEntry
})
export type SessionRow = typeof SessionRow.Type

export const History = Schema.Struct({
  sessionKey: Schema.String,
  entries: Schema.Array(Entry)
})
export type History = typeof History.Type

/** The config in file form (secrets read `<redacted>`), as JSON. */
export const EncodedConfig = Schema.Record(Schema.String, Schema.Unknown)

export const ConfigSnapshot = Schema.Struct({
  /** The config file the gateway reads. */
  path: Schema.String,
  exists: Schema.Boolean,
  /** sha256 (hex) of the file's bytes; pass it to `PatchConfig` as `baseHash`. `null` when there is no file. */
  hash: Schema.NullOr(Schema.String),
  /** The effective config (file, then environment and flags), secrets redacted. */
  config: EncodedConfig
})
export type ConfigSnapshot = typeof ConfigSnapshot.Type

export const PatchResult = Schema.Struct({
  /** Effective leaf paths that changed (`gateway.port`); empty for a no-op. */
  changed: Schema.Array(Schema.String),
  /** The new file's hash, for the next patch. */
  hash: Schema.String,
  config: EncodedConfig
})
export type PatchResult = typeof PatchResult.Type

export const Status = Schema.Struct({
  version: Schema.String,
  pid: Schema.Number,
  /** Epoch ms when this gateway process started. */
  startedAt: Schema.Number,
  uptimeMs: Schema.Number,
  /** Sessions in the store (every agent). */
  sessions: Schema.Number,
  /** The session host: live actors, and restarts, passivations and give-ups since start. */
  actors: Schema.Struct({
    live: Schema.Number,
    restarts: Schema.Number,
    passivations: Schema.Number,
    gaveUp: Schema.Number
  }),
  /** Bytes, from the process. */
  memory: Schema.Struct({
    rss: Schema.Number,
    heapTotal: Schema.Number,
    heapUsed: Schema.Number,
    external: Schema.Number
  })
})
export type Status = typeof Status.Type

/**
 * What a subscriber to a session sees: `Subscribed` once the subscription
 * is in place (a turn started after it is seen whole), then every event of
 * every turn of that session from any surface that publishes, and `TurnFailed`
 * when a turn ends with an error instead of `TurnCompleted`.
 */
export const SessionEvent = Schema.Union([
  Schema.TaggedStruct("Subscribed", { sessionKey: Schema.String }),
  Schema.TaggedStruct("Turn", { sessionKey: Schema.String, runId: Schema.String, event: TurnEvent }),
  Schema.TaggedStruct("TurnFailed", { sessionKey: Schema.String, runId: Schema.String, error: Schema.String, message: Schema.String })
])
export type SessionEvent = typeof SessionEvent.Type

// ---------------------------------------------------------------------------
// Auth
// ---------------------------------------------------------------------------

/**
 * Every procedure needs the gateway's credentials: `Authorization: Bearer
 * <token or password>` on the WebSocket upgrade request (what
 * `BeamclawClient.layer` sends), or the same header on each request
 * (`RpcClient.withHeaders`) for clients that cannot set upgrade headers.
 * Never in the URL. Without them every call fails with `AuthFailed`.
 */
export class RpcAuth extends RpcMiddleware.Service<RpcAuth>()("beamclaw/gateway/rpc/RpcAuth", {
  error: AuthFailed
}) {}

// ---------------------------------------------------------------------------
// Procedures
// ---------------------------------------------------------------------------

/**
 * Sends a message to a session and streams the turn's events, ending with
 * `TurnCompleted`. Interrupting the stream (or disconnecting) cancels the turn.
 */
export const Send = Rpc.make("Send", {
  payload: {
    ...sessionTarget,
    text: Schema.String,
    images: Schema.optionalKey(Schema.Array(ImagePart)),
    /** Names the run in events and transcripts; a random id by default. */
    runId: Schema.optionalKey(Schema.String)
  },
  success: TurnEvent,
  error: Schema.Union([InvalidRequest, InvalidSessionKey, UnknownAgent, TurnFailure]),
  stream: true
})

export const ListSessions = Rpc.make("ListSessions", {
  payload: { agentId: Schema.optionalKey(Schema.String) },
  success: Schema.Array(SessionRow),
  error: Schema.Union([UnknownAgent, StoreError])
})

/** The session's transcript entries (the last `limit` when given). */
export const GetHistory = Rpc.make("History", {
  payload: { ...sessionTarget, limit: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThan(0))) },
  success: History,
  error: Schema.Union([InvalidSessionKey, UnknownAgent, SessionUnavailable])
})

/** Starts the session afresh (the old transcript is archived, as OpenClaw's reset). */
export const Reset = Rpc.make("Reset", {
  payload: sessionTarget,
  success: Schema.Struct({ sessionKey: Schema.String, entry: SessionEntry }),
  error: Schema.Union([InvalidSessionKey, UnknownAgent, SessionUnavailable, StoreError])
})

export const GetConfig = Rpc.make("GetConfig", {
  success: ConfigSnapshot,
  error: ConfigWriteFailed
})

/**
 * Applies a JSON merge patch (RFC 7396: objects merge, `null` deletes; arrays
 * of objects with an `id` merge by id, as OpenClaw's config.patch) to the
 * config file, validates the result, writes it atomically and reloads.
 * `baseHash` (from `GetConfig`) is required once the file exists; a stale one
 * is a `ConfigConflict`. Paths in `replacePaths` take the patch's array whole. A value of `<redacted>` keeps the current secret.
 */
export const PatchConfig = Rpc.make("PatchConfig", {
  payload: {
    patch: Schema.Record(Schema.String, Schema.Unknown),
    baseHash: Schema.optionalKey(Schema.String),
    /** Array paths (`agents.list`, `x.items[].tags`) the patch replaces whole instead of merging by id. */
    replacePaths: Schema.optionalKey(Schema.Array(Schema.String))
  },
  success: PatchResult,
  error: Schema.Union([ConfigConflict, ConfigInvalid, ConfigWriteFailed])
})

export const GetStatus = Rpc.make("Status", {
  success: Status,
  error: StoreError
})

/**
 * A session maintenance pass now (OpenClaw's `sessions cleanup`): one agent
 * (`agentId`, else the default) or every agent with sessions (`allAgents`).
 * `dryRun` reports without removing; `enforce` applies even in warn mode;
 * `activeKey` is kept whatever the rules say; `fixMissing` also drops
 * entries whose transcript is gone. One summary per agent.
 */
export const CleanupSessions = Rpc.make("CleanupSessions", {
  payload: {
    agentId: Schema.optionalKey(Schema.String),
    allAgents: Schema.optionalKey(Schema.Boolean),
    dryRun: Schema.optionalKey(Schema.Boolean),
    enforce: Schema.optionalKey(Schema.Boolean),
    activeKey: Schema.optionalKey(Schema.String),
    fixMissing: Schema.optionalKey(Schema.Boolean)
  },
  success: Schema.Array(CleanupSummary),
  error: Schema.Union([InvalidRequest, InvalidSessionKey, UnknownAgent, StoreError])
})

/** A session's events from every turn, as they happen, until interrupted. */
export const Subscribe = Rpc.make("Subscribe", {
  payload: sessionTarget,
  success: SessionEvent,
  error: Schema.Union([InvalidSessionKey, UnknownAgent]),
  stream: true
})

/** Every channel account the gateway runs, with its connection state and last error. */
export const ChannelsStatus = Rpc.make("ChannelsStatus", {
  success: Schema.Array(AccountStatus)
})

const pairingTarget = {
  channel: Schema.String,
  /** The channel account; the default account when absent. */
  accountId: Schema.optionalKey(Schema.String)
}

/** Pending DM pairing requests of a channel (unexpired, oldest first). */
export const PairingList = Rpc.make("PairingList", {
  payload: pairingTarget,
  success: Schema.Array(PairingRequest),
  error: Schema.Union([ChannelPairingStoreError, InvalidPairingTarget])
})

/** Approves a pairing code: its sender joins the account's allow list. */
export const PairingApprove = Rpc.make("PairingApprove", {
  payload: { ...pairingTarget, code: Schema.String },
  success: PairingRequest,
  error: Schema.Union([ChannelPairingStoreError, InvalidPairingTarget, PairingCodeNotFound])
})

/** Rejects a pairing code; the sender may ask again later. */
export const PairingReject = Rpc.make("PairingReject", {
  payload: { ...pairingTarget, code: Schema.String },
  success: PairingRequest,
  error: Schema.Union([ChannelPairingStoreError, InvalidPairingTarget, PairingCodeNotFound])
})

export class BeamclawRpcs extends RpcGroup.make(
  Send,
  ListSessions,
  GetHistory,
  Reset,
  CleanupSessions,
  GetConfig,
  PatchConfig,
  GetStatus,
  Subscribe,
  ChannelsStatus,
  PairingList,
  PairingApprove,
  PairingReject
).middleware(RpcAuth) {}
