/**
 * What a method handler is: decoded params in, a payload or a MethodError
 * out, with the connection's identity and the hub at hand.
 */
import { Effect, Result, Schema, SchemaIssue } from "effect"
import type { AgentDirectory } from "../../../agent/AgentDirectory.ts"
import { AppConfig } from "../../../config/AppConfig.ts"
import type { Paths } from "../../../config/Paths.ts"
import type { Sessions } from "../../../session/Sessions.ts"
import type { SessionMaintenance } from "../../../session/SessionMaintenance.ts"
import type { SessionEvents } from "../../rpc/SessionEvents.ts"
import type { ConfigWriter } from "../../../config/ConfigWriter.ts"
import * as SessionKey from "../../../session/SessionKey.ts"
import { AgentDirectory as AgentDirectoryService } from "../../../agent/AgentDirectory.ts"
import type { GatewayAuth } from "../../auth/GatewayAuth.ts"
import type { Readiness } from "../../Readiness.ts"
import type { ChannelSupervisor } from "../../../channels/ChannelSupervisor.ts"
import type { ChannelHost } from "../../../channels/ChannelHost.ts"
import { type ConnectParams, invalidRequest, type MethodError, strict, unavailable } from "../Frames.ts"
import type { Hub } from "../Hub.ts"
import type { Role } from "../Scopes.ts"

export type WsServices = GatewayAuth | Sessions | SessionMaintenance | SessionEvents | ConfigWriter | AgentDirectory | AppConfig | Paths | Readiness | ChannelSupervisor | ChannelHost

export interface MethodContext {
  readonly hub: Hub
  readonly connId: string
  readonly role: Role
  readonly scopes: ReadonlyArray<string>
  readonly client: ConnectParams["client"]
  /** The paired device this connection proved (connect.params.device), if any. */
  readonly deviceId: string | undefined
  /** True when the connection authenticated with that device's token rather than the shared secret. */
  readonly deviceTokenAuth: boolean
  /** An interim `res` for this request before the final one (the `agent` method's "accepted"). */
  readonly respondInterim: (payload: unknown) => void
  /** Runs once this request's final response is queued: a method that closes its own caller still answers first. */
  readonly afterResponse: (action: () => void) => void
}

export type Handler = (params: unknown, context: MethodContext) => Effect.Effect<unknown, MethodError, WsServices>

const formatIssue = SchemaIssue.makeFormatterDefault()

/** Decodes params strictly (unknown keys rejected); missing params read as `{}`. */
export const decodeParams = <S extends Schema.ConstraintDecoder<unknown>>(method: string, schema: S, params: unknown): Effect.Effect<S["Type"], MethodError> =>
  Result.match(Schema.decodeUnknownResult(schema)(params ?? {}, strict), {
    onSuccess: (value) => Effect.succeed(value),
    onFailure: (error) => Effect.fail(invalidRequest(`invalid ${method} params: ${formatIssue(error.issue)}`))
  })

/** A client's session key as a store key, as OpenClaw's toAgentStoreSessionKey. */
export const resolveSessionKey = (requested: string | undefined, agentId?: string | undefined) =>
  Effect.gen(function*() {
    const agents = yield* AgentDirectoryService
    const policy = yield* agents.sessionPolicy
    const id = agentId ?? (yield* agents.defaultAgentId)
    const parsed = SessionKey.toStoreKey(requested, { agentId: id, mainKey: policy.mainKey })
    if (Result.isFailure(parsed)) return yield* Effect.fail(invalidRequest(parsed.failure.message))
    return parsed.success
  })

/** Session-layer failures as protocol errors: bad keys are the client's fault, the rest is unavailability. */
export const sessionError = (error: { readonly _tag: string; readonly message: string }): MethodError =>
  error._tag === "InvalidSessionKey" || error._tag === "UnknownAgent" ? invalidRequest(error.message) : unavailable(error.message)

export const NonEmptyString = Schema.String.check(Schema.isMinLength(1))
export const PositiveInt = Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(1))

/**
 * `provider/model`, or an alias from agents.defaults.models; when that map is
 * set it is also the allowlist, as OpenClaw's. With `defaultProvider`, a bare
 * model id that is no alias is that provider's model.
 */
export const resolveModel = (requested: string, defaultProvider?: string | undefined) =>
  Effect.gen(function*() {
    const config = yield* (yield* AppConfig).get
    const catalog = config.agents.defaults.models
    const trimmed = requested.trim()
    const byAlias = Object.entries(catalog).find(([, entry]) => entry.alias !== undefined && entry.alias.toLowerCase() === trimmed.toLowerCase())?.[0]
    const ref = byAlias ?? (defaultProvider !== undefined && defaultProvider !== "" && !trimmed.includes("/") ? `${defaultProvider}/${trimmed}` : trimmed)
    const slash = ref.indexOf("/")
    if (slash <= 0 || slash === ref.length - 1) {
      return yield* Effect.fail(invalidRequest(`invalid model: ${JSON.stringify(requested)} (use provider/model, e.g. anthropic/claude-sonnet-4-5, or a model alias)`))
    }
    const allowed = Object.keys(catalog)
    if (allowed.length > 0 && !allowed.includes(ref)) {
      return yield* Effect.fail(invalidRequest(`model not allowed: ${ref} (allowed: ${allowed.join(", ")})`))
    }
    return ref
  })
