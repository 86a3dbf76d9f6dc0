/**
 * Errors of device-token rotation, revocation and confirmation. Apart from
 * GatewayAuth.ts because that module is part of the gateway's first start-up
 * step, and these are needed only once the pairing methods are loaded.
 */
import { Schema } from "effect"

/** OpenClaw's deny reasons for `device.token.rotate` / `device.token.revoke` (logged, and carried in `details.reason`). */
export const DeviceTokenDenyReason = Schema.Literals([
  "unknown-device-or-role",
  "scope-outside-approved-baseline",
  "caller-missing-scope",
  "device-ownership-mismatch",
  "role-management-requires-admin"
])
export type DeviceTokenDenyReason = typeof DeviceTokenDenyReason.Type

/** A token rotation or revocation the store refused; the wire message stays OpenClaw's generic "denied". */
export class DeviceTokenDenied extends Schema.TaggedError<DeviceTokenDenied>()("DeviceTokenDenied", {
  reason: DeviceTokenDenyReason,
  deviceId: Schema.String,
  role: Schema.String,
  /** For `caller-missing-scope`: the first requested scope the caller does not hold. */
  scope: Schema.optionalKey(Schema.String),
  message: Schema.String
}) {}

/** `confirmToken` given a presented token that is no longer the live, unrevoked token of (device, role), or no longer covers the scopes. */
export class DeviceTokenMismatch extends Schema.TaggedError<DeviceTokenMismatch>()("DeviceTokenMismatch", {
  deviceId: Schema.String,
  role: Schema.String,
  message: Schema.String
}) {}
