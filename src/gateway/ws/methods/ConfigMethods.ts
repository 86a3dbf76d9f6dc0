/**
 * config.get / config.patch / config.apply (openclaw-gateway.md §2.12.5)
 * over the one config writer (ConfigWriter): writes are guarded by the hash
 * of the file as the client last read it, validated in full, written
 * atomically, then hot-applied through AppConfig.reload; the process never
 * restarts. This module only speaks OpenClaw's params, payloads and errors.
 */
import { Effect, Schema } from "effect"
import { decodeConfigText } from "../../../config/ConfigLoader.ts"
import { ConfigWriter, type ConfigWriteError, type ConfigWriterShape, parseRaw, type WriteResult } from "../../../config/ConfigWriter.ts"
import { invalidRequest, type MethodError, unavailable } from "../Frames.ts"
import type { Hub } from "../Hub.ts"
import { decodeParams, type Handler } from "./Method.ts"

const withWriter = <A>(use: (writer: ConfigWriterShape) => Effect.Effect<A, MethodError>): Effect.Effect<A, MethodError, ConfigWriter> =>
  Effect.flatMap(ConfigWriter, use)

/** The writer's failures as OpenClaw reports them. */
const toMethodError = (baseHash: string | undefined) => (error: ConfigWriteError): MethodError => {
  switch (error._tag) {
    case "ConfigConflict":
      return baseHash === undefined
        ? invalidRequest("config base hash required; re-run config.get and retry")
        : invalidRequest("config changed since last load; re-run config.get and retry", { code: "CONFIG_HASH_CONFLICT" })
    case "ConfigInvalid":
      return invalidRequest(error.message, { issues: error.issues })
    case "ConfigWriteFailed":
      return unavailable(`${error.message} (${error.path})`)
  }
}

const get: Handler = (params) =>
  Effect.gen(function*() {
    yield* decodeParams("config.get", Schema.Struct({}), params)
    const snapshot = yield* withWriter((writer) => writer.snapshot.pipe(Effect.mapError(toMethodError(undefined))))
    const decoded = yield* decodeConfigText(snapshot.raw ?? "", snapshot.path).pipe(Effect.result)
    return {
      path: snapshot.path,
      exists: snapshot.exists,
      // The running config (secrets redacted); the file may differ only when it is currently invalid.
      config: snapshot.config,
      hash: snapshot.hash,
      valid: decoded._tag === "Success",
      issues: decoded._tag === "Success" ? [] : decoded.failure.issues,
      warnings: []
    }
  })

const WriteParams = Schema.Struct({
  raw: Schema.String,
  baseHash: Schema.optionalKey(Schema.String),
  sessionKey: Schema.optionalKey(Schema.String),
  note: Schema.optionalKey(Schema.String),
  restartDelayMs: Schema.optionalKey(Schema.Number),
  replacePaths: Schema.optionalKey(Schema.Array(Schema.String))
})

const write = (method: "config.patch" | "config.apply"): Handler => (params) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams(method, WriteParams, params)
    // A blank hash is no hash, as OpenClaw's resolveBaseHash.
    const baseHash = decoded.baseHash === undefined || decoded.baseHash.trim() === "" ? undefined : decoded.baseHash
    const input = yield* parseRaw(decoded.raw).pipe(Effect.mapError((error) => invalidRequest(`${method} ${error.message}`)))
    const result: WriteResult = yield* withWriter((writer) =>
      (method === "config.patch"
        ? writer.patch({ patch: input, baseHash, replacePaths: decoded.replacePaths })
        : writer.apply({ raw: decoded.raw, baseHash })
      ).pipe(Effect.mapError(toMethodError(baseHash)))
    )
    return {
      ok: true,
      path: result.path,
      hash: result.hash,
      config: result.config,
      changedPaths: result.changed,
      // Changes hot-apply per subsystem; the process is never restarted.
      restart: { scheduled: false }
    }
  })

export const handlers = (_hub: Hub): Record<string, Handler> => ({
  "config.get": get,
  "config.patch": write("config.patch"),
  "config.apply": write("config.apply")
})
