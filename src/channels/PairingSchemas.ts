/**
 * The pairing store's data and errors as schemas only (no Node modules), so
 * the typed RPC surface and its clients can name them.
 */
import { Schema } from "effect"

const IsoTime = Schema.String.check(
  Schema.makeFilter((s: string) => Number.isFinite(Date.parse(s)), { expected: "an ISO 8601 time" })
).annotate({ expected: "an ISO 8601 time" })

const NonEmptyString = Schema.String.check(Schema.isNonEmpty())

export const PairingRequest = Schema.Struct({
  /** The sender's platform id. */
  id: NonEmptyString,
  code: NonEmptyString,
  createdAt: IsoTime,
  lastSeenAt: IsoTime,
  meta: Schema.Struct({
    /** Missing in files written for a single-account setup: the default account. */
    accountId: Schema.optionalKey(Schema.String),
    name: Schema.optionalKey(Schema.String)
  })
})
export type PairingRequest = typeof PairingRequest.Type

export class ChannelPairingStoreError extends Schema.TaggedError<ChannelPairingStoreError>()("ChannelPairingStoreError", {
  file: Schema.String,
  message: Schema.String
}) {}

/** No pending request has this code (never issued, approved or rejected already, or expired). */
export class PairingCodeNotFound extends Schema.TaggedError<PairingCodeNotFound>()("PairingCodeNotFound", {
  channel: Schema.String,
  code: Schema.String,
  message: Schema.String
}) {}

/** A channel, account or sender id that cannot name a pairing entry (it would name a file or is empty). */
export class InvalidPairingTarget extends Schema.TaggedError<InvalidPairingTarget>()("InvalidPairingTarget", {
  message: Schema.String
}) {}
