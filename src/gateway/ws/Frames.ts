/**
 * OpenClaw's gateway WebSocket protocol, v4: frame shapes, error codes,
 * limits and the connect parameters, as the reference client sends them
 * (openclaw-gateway.md §2.1-§2.3; `packages/gateway-protocol/src/schema/frames.ts`).
 */
import { Schema } from "effect"

export const PROTOCOL_VERSION = 4
/** Probe clients (`client.mode: "probe"`) may negotiate down to v3, as OpenClaw allows. */
export const MIN_PROBE_PROTOCOL_VERSION = 3

export const MAX_PAYLOAD_BYTES = 25 * 1024 * 1024
export const MAX_BUFFERED_BYTES = 50 * 1024 * 1024
export const MAX_PREAUTH_PAYLOAD_BYTES = 64 * 1024
export const DEFAULT_TICK_INTERVAL_MS = 30_000
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 15_000

export const ErrorCodes = {
  NOT_LINKED: "NOT_LINKED",
  NOT_PAIRED: "NOT_PAIRED",
  AGENT_TIMEOUT: "AGENT_TIMEOUT",
  FORBIDDEN: "FORBIDDEN",
  INVALID_REQUEST: "INVALID_REQUEST",
  UNAVAILABLE: "UNAVAILABLE"
} as const
export type ErrorCode = typeof ErrorCodes[keyof typeof ErrorCodes]

export interface ErrorShape {
  readonly code: ErrorCode
  readonly message: string
  readonly details?: unknown
  readonly retryable?: boolean
  readonly retryAfterMs?: number
}

/** A method's failure, rendered as an `ok:false` response. */
export class MethodError extends Schema.TaggedError<MethodError>()("MethodError", {
  code: Schema.Literals(["NOT_LINKED", "NOT_PAIRED", "AGENT_TIMEOUT", "FORBIDDEN", "INVALID_REQUEST", "UNAVAILABLE"]),
  message: Schema.String,
  details: Schema.optionalKey(Schema.Unknown),
  retryable: Schema.optionalKey(Schema.Boolean),
  retryAfterMs: Schema.optionalKey(Schema.Number)
}) {}

export const invalidRequest = (message: string, details?: unknown): MethodError =>
  new MethodError({ code: "INVALID_REQUEST", message, ...(details === undefined ? {} : { details }) })
export const unavailable = (message: string, details?: unknown): MethodError =>
  new MethodError({ code: "UNAVAILABLE", message, ...(details === undefined ? {} : { details }) })

export const errorShapeOf = (error: MethodError): ErrorShape => ({
  code: error.code,
  message: error.message,
  ...(error.details === undefined ? {} : { details: error.details }),
  ...(error.retryable === undefined ? {} : { retryable: error.retryable }),
  ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs })
})

const NonEmptyString = Schema.String.check(Schema.isMinLength(1))

export const RequestFrame = Schema.Struct({
  type: Schema.Literal("req"),
  id: NonEmptyString,
  method: NonEmptyString,
  params: Schema.optionalKey(Schema.Unknown),
  traceparent: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(128))),
  expectedProfileId: Schema.optionalKey(Schema.String)
})
export type RequestFrame = typeof RequestFrame.Type

export const GATEWAY_CLIENT_IDS = [
  "webchat-ui",
  "openclaw-control-ui",
  "webchat",
  "cli",
  "gateway-client",
  "openclaw-macos",
  "openclaw-ios",
  "openclaw-android",
  "node-host",
  "test",
  "fingerprint",
  "openclaw-probe",
  "openclaw-tui",
  "openclaw-browser-copilot",
  "openclaw-linux",
  "openclaw-watchos",
  "openclaw-worker"
] as const

export const GATEWAY_CLIENT_MODES = ["webchat", "cli", "ui", "backend", "node", "probe", "test"] as const

const Integer = Schema.Number.check(Schema.isInt())

export const DeviceIdentity = Schema.Struct({
  id: NonEmptyString,
  publicKey: NonEmptyString.check(Schema.isMaxLength(1024)),
  signature: NonEmptyString.check(Schema.isMaxLength(256)),
  signedAt: Integer,
  nonce: Schema.optionalKey(Schema.String)
})
export type DeviceIdentity = typeof DeviceIdentity.Type

export const ConnectParams = Schema.Struct({
  minProtocol: Integer.check(Schema.isGreaterThanOrEqualTo(1)),
  maxProtocol: Integer.check(Schema.isGreaterThanOrEqualTo(1)),
  client: Schema.Struct({
    id: Schema.Literals(GATEWAY_CLIENT_IDS),
    displayName: Schema.optionalKey(Schema.String),
    version: NonEmptyString,
    buildId: Schema.optionalKey(Schema.String),
    platform: NonEmptyString,
    deviceFamily: Schema.optionalKey(Schema.String),
    modelIdentifier: Schema.optionalKey(Schema.String),
    mode: Schema.Literals(GATEWAY_CLIENT_MODES),
    instanceId: Schema.optionalKey(Schema.String)
  }),
  caps: Schema.optionalKey(Schema.Array(Schema.String)),
  commands: Schema.optionalKey(Schema.Array(Schema.String)),
  permissions: Schema.optionalKey(Schema.Record(Schema.String, Schema.Boolean)),
  pathEnv: Schema.optionalKey(Schema.String),
  role: Schema.optionalKey(Schema.String),
  scopes: Schema.optionalKey(Schema.Array(Schema.String)),
  device: Schema.optionalKey(DeviceIdentity),
  auth: Schema.optionalKey(Schema.Struct({
    token: Schema.optionalKey(Schema.String),
    deviceToken: Schema.optionalKey(Schema.String),
    password: Schema.optionalKey(Schema.String),
    bootstrapToken: Schema.optionalKey(Schema.String)
  })),
  locale: Schema.optionalKey(Schema.String),
  userAgent: Schema.optionalKey(Schema.String)
})
export type ConnectParams = typeof ConnectParams.Type

/** Every decode reports all problems and rejects unknown keys, as OpenClaw's `additionalProperties: false`. */
export const strict = { errors: "all", onExcessProperty: "error" } as const

export const responseOk = (id: string, payload: unknown) => ({ type: "res" as const, id, ok: true as const, payload })
export const responseError = (id: string, error: ErrorShape) => ({ type: "res" as const, id, ok: false as const, error })

/** A WebSocket close reason is at most 123 bytes of UTF-8. */
export const truncateCloseReason = (reason: string): string => {
  const bytes = Buffer.from(reason, "utf8")
  if (bytes.length <= 123) return reason
  return bytes.subarray(0, 120).toString("utf8").replace(/\uFFFD+$/, "") + "..."
}
