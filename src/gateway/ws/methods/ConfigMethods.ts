/**
 * config.get / config.patch / config.apply (openclaw-gateway.md §2.12.5):
 * writes are guarded by the hash of the file as the client last read it,
 * validated in full, written atomically, then hot-applied through
 * AppConfig.reload; the process never restarts.
 */
import { createHash } from "node:crypto"
import * as NodeFs from "node:fs/promises"
import * as Path from "node:path"
import { Effect, Option, Predicate, Schema, Semaphore } from "effect"
import * as Yaml from "yaml"
import { AppConfig } from "../../../config/AppConfig.ts"
import { type ConfigError, decodeConfigText, encodeConfig, formatIssueLine, parseConfigText, readConfigText, REDACTED_TEXT } from "../../../config/ConfigLoader.ts"
import { invalidRequest, type MethodError, unavailable } from "../Frames.ts"
import type { Hub } from "../Hub.ts"
import { decodeParams, type Handler } from "./Method.ts"

export const hashText = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex")

const configErrorToMethod = (prefix: string) => (error: ConfigError): MethodError => {
  const lines = error.issues.map(formatIssueLine)
  const shown = lines.slice(0, 3).join("; ")
  const more = lines.length > 3 ? ` (+${lines.length - 3} more issues)` : ""
  return invalidRequest(`${prefix}: ${shown}${more}`, { issues: error.issues })
}

const readCurrent = (file: string) =>
  readConfigText(file).pipe(
    Effect.mapError(configErrorToMethod("cannot read the config file")),
    Effect.map((text) => Option.isSome(text) ? { exists: true, text: text.value, hash: hashText(text.value) } : { exists: false, text: "", hash: null })
  )

const get: Handler = (params) =>
  Effect.gen(function*() {
    yield* decodeParams("config.get", Schema.Struct({}), params)
    const appConfig = yield* AppConfig
    const current = yield* readCurrent(appConfig.file)
    const decoded = yield* decodeConfigText(current.text, appConfig.file).pipe(Effect.result)
    return {
      path: appConfig.file,
      exists: current.exists,
      // The running config (secrets redacted); the file may differ only when it is currently invalid.
      config: encodeConfig(yield* appConfig.get),
      hash: current.hash,
      valid: decoded._tag === "Success",
      issues: decoded._tag === "Success" ? [] : decoded.failure.issues,
      warnings: []
    }
  })

/**
 * RFC 7396 merge patch: objects merge, `null` deletes, anything else replaces.
 * A value that reads `<redacted>` (what config.get showed for a secret) keeps the secret.
 */
export const mergePatch = (target: unknown, patch: unknown): unknown => {
  if (!Predicate.isObject(patch)) return patch
  const result: Record<string, unknown> = Predicate.isObject(target) ? { ...target } : {}
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key]
    else if (value === REDACTED_TEXT && key in result) continue
    else result[key] = mergePatch(result[key], value)
  }
  return result
}

/** `<redacted>` anywhere in a replacement config keeps the secret at the same path. */
const restoreRedacted = (next: unknown, previous: unknown): unknown => {
  if (next === REDACTED_TEXT) return previous === undefined ? next : previous
  if (Predicate.isObject(next)) {
    return Object.fromEntries(Object.entries(next).map(([key, value]) => [key, restoreRedacted(value, Predicate.isObject(previous) ? previous[key] : undefined)]))
  }
  return next
}

const render = (file: string, value: unknown): string =>
  Path.extname(file).toLowerCase() === ".json" ? `${JSON.stringify(value, null, 2)}\n` : Yaml.stringify(value)

const writeAtomically = (file: string, text: string) =>
  Effect.tryPromise({
    try: async () => {
      await NodeFs.mkdir(Path.dirname(file), { recursive: true })
      const temp = Path.join(Path.dirname(file), `.${Path.basename(file)}.${process.pid}.${Date.now()}.tmp`)
      try {
        await NodeFs.writeFile(temp, text, { mode: 0o600 })
        await NodeFs.rename(temp, file)
      } catch (cause) {
        await NodeFs.rm(temp, { force: true })
        throw cause
      }
    },
    catch: (cause) => unavailable(`cannot write the config file ${file}: ${cause instanceof Error ? cause.message : String(cause)}`)
  })

/** OpenClaw sends JSON5; JSON and YAML (a JSON superset that takes most JSON5 habits) are read here. */
const parseRaw = (method: string, raw: string): Effect.Effect<unknown, MethodError> =>
  Effect.try({
    try: (): unknown => Yaml.parse(raw, { uniqueKeys: true }),
    catch: (cause) => invalidRequest(`${method} raw is not valid JSON: ${cause instanceof Error ? cause.message.split("\n")[0] : String(cause)}`)
  })

const WriteParams = Schema.Struct({
  raw: Schema.String,
  baseHash: Schema.optionalKey(Schema.String),
  sessionKey: Schema.optionalKey(Schema.String),
  note: Schema.optionalKey(Schema.String),
  restartDelayMs: Schema.optionalKey(Schema.Number),
  replacePaths: Schema.optionalKey(Schema.Array(Schema.String))
})

const write = (method: "config.patch" | "config.apply", lock: Semaphore.Semaphore) => (params: unknown) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams(method, WriteParams, params)
    const appConfig = yield* AppConfig
    const file = appConfig.file
    const current = yield* readCurrent(file)
    if (current.exists) {
      if (decoded.baseHash === undefined || decoded.baseHash.trim() === "") return yield* Effect.fail(invalidRequest("config base hash required; re-run config.get and retry"))
      if (decoded.baseHash !== current.hash) return yield* Effect.fail(invalidRequest("config changed since last load; re-run config.get and retry", { code: "CONFIG_HASH_CONFLICT" }))
    }
    const input = yield* parseRaw(method, decoded.raw)
    if (!Predicate.isObject(input)) return yield* Effect.fail(invalidRequest(`${method} raw must be an object`))
    const previous = current.exists ? yield* parseConfigText(current.text, file).pipe(Effect.mapError(configErrorToMethod("invalid config; fix before patching"))) : {}
    const next = method === "config.patch" ? mergePatch(previous, input) : restoreRedacted(input, previous)
    const text = render(file, next)
    yield* decodeConfigText(text, file).pipe(Effect.mapError(configErrorToMethod("invalid config")))
    yield* writeAtomically(file, text)
    const reloaded = yield* appConfig.reload.pipe(Effect.mapError(configErrorToMethod("the written config did not load")))
    return {
      ok: true,
      path: file,
      hash: hashText(text),
      config: encodeConfig(yield* appConfig.get),
      changedPaths: reloaded.changed,
      // Changes hot-apply per subsystem; the process is never restarted.
      restart: { scheduled: false }
    }
  }).pipe(lock.withPermits(1))

export const handlers = (_hub: Hub): Record<string, Handler> => {
  // One write at a time, so two writers holding the same base hash cannot both pass the check.
  const lock = Semaphore.makeUnsafe(1)
  return {
    "config.get": get,
    "config.patch": write("config.patch", lock),
    "config.apply": write("config.apply", lock)
  }
}
