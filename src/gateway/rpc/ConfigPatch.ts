/**
 * GetConfig and PatchConfig over the one config writer (ConfigWriter): the
 * RPC's shapes, and conflict messages that name the RPC to call again.
 */
import { Effect } from "effect"
import { ConfigConflict, type ConfigWriterShape, type ConfigWriteError, type PatchRequest } from "../../config/ConfigWriter.ts"
import type { ConfigSnapshot, ConfigWriteFailed, PatchResult } from "./Rpcs.ts"

/** The snapshot without the file's raw text, which holds the secrets the config redacts. */
export const snapshot = (writer: ConfigWriterShape): Effect.Effect<ConfigSnapshot, ConfigWriteFailed> =>
  Effect.map(writer.snapshot, ({ path, exists, hash, config }) => ({ path, exists, hash, config }))

const conflictForRpc = (request: PatchRequest) => (error: ConfigWriteError): ConfigWriteError =>
  error._tag !== "ConfigConflict" ? error : new ConfigConflict({
    message: request.baseHash === undefined
      ? "config base hash required; re-run GetConfig and retry"
      : "config changed since last load; re-run GetConfig and retry",
    currentHash: error.currentHash
  })

export const patch = (writer: ConfigWriterShape, request: PatchRequest): Effect.Effect<PatchResult, ConfigWriteError> =>
  writer.patch(request).pipe(
    Effect.mapError(conflictForRpc(request)),
    Effect.map(({ changed, hash, config }) => ({ changed, hash, config }))
  )
