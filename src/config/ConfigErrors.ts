/**
 * The errors of writing the config file, shared by every surface that edits
 * it. Schema-only, so the typed client can carry them over the wire.
 */
import { Schema } from "effect"

/** `PatchConfig` against a file that changed since the `GetConfig` its `baseHash` came from. */
export class ConfigConflict extends Schema.TaggedError<ConfigConflict>()("ConfigConflict", {
  message: Schema.String,
  /** The hash of the file as it is now; `null` when there is no file. */
  currentHash: Schema.NullOr(Schema.String)
}) {}

export const ConfigProblem = Schema.Struct({ path: Schema.String, message: Schema.String })
export type ConfigProblem = typeof ConfigProblem.Type

/** The patched config would not be valid (or the file could not be parsed); nothing was written. */
export class ConfigInvalid extends Schema.TaggedError<ConfigInvalid>()("ConfigInvalid", {
  message: Schema.String,
  issues: Schema.Array(ConfigProblem)
}) {}

/** The config file could not be read or written. */
export class ConfigWriteFailed extends Schema.TaggedError<ConfigWriteFailed>()("ConfigWriteFailed", {
  path: Schema.String,
  message: Schema.String
}) {}
