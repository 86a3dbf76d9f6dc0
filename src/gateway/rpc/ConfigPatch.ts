/**
 * Config reads and merge-patches for the RPC surface: the file's hash is the
 * optimistic-concurrency token (sha256 of its bytes, as OpenClaw's
 * config.get `hash`), a patch is RFC 7396 with OpenClaw's by-id merge for
 * arrays of objects, the result is validated as the exact text that will be
 * written, written atomically (temp file, fsync, rename) and then reloaded.
 * A YAML file is patched in place, so comments outside the changed keys stay.
 */
import { createHash, randomUUID } from "node:crypto"
import * as NodeFs from "node:fs/promises"
import * as NodePath from "node:path"
import { Effect, Predicate, Semaphore } from "effect"
import * as Yaml from "yaml"
import { AppConfig } from "../../config/AppConfig.ts"
import { type ConfigError, decodeConfigText, encodeConfig, parseConfigText, REDACTED_TEXT } from "../../config/ConfigLoader.ts"
import { ConfigConflict, ConfigInvalid, type ConfigSnapshot, ConfigWriteFailed, type PatchResult } from "./Rpcs.ts"

export interface PatchRequest {
  readonly patch: { readonly [key: string]: unknown }
  readonly baseHash?: string | undefined
  /** Dotted paths whose arrays the patch replaces whole instead of merging by id. */
  readonly replacePaths?: ReadonlyArray<string> | undefined
}

const hashOf = (bytes: Uint8Array | string): string => createHash("sha256").update(bytes).digest("hex")

const describe = (cause: unknown): string => cause instanceof Error ? cause.message : String(cause)

const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"])

/** The file's text and hash; `undefined` when there is no file. */
const readFile = (file: string) =>
  Effect.tryPromise({
    try: (signal) => NodeFs.readFile(file, { signal }),
    catch: (cause) => cause
  }).pipe(
    Effect.map((bytes): { readonly text: string; readonly hash: string } | undefined => ({ text: bytes.toString("utf8"), hash: hashOf(bytes) })),
    Effect.catch((cause) =>
      typeof cause === "object" && cause !== null && "code" in cause && cause.code === "ENOENT"
        ? Effect.succeed(undefined)
        : Effect.fail(new ConfigWriteFailed({ path: file, message: `cannot read the config file: ${describe(cause)}` }))
    )
  )

const invalid = (message: string) => (error: ConfigError) =>
  new ConfigInvalid({
    message: `${message}: ${error.issues.slice(0, 3).map((issue) => issue.path === "" ? issue.message : `${issue.path}: ${issue.message}`).join("; ")}${error.issues.length > 3 ? ` (+${error.issues.length - 3} more issues)` : ""}`,
    issues: error.issues
  })

/** `agents.list`, `models.providers.custom.models[].input` (OpenClaw's replacePaths spelling). */
const pathKey = (path: ReadonlyArray<string>) =>
  path.reduce((text, segment) => segment === "[]" ? `${text}[]` : text === "" ? segment : `${text}.${segment}`, "")

const hasStringId = (value: unknown): value is { readonly id: string } =>
  Predicate.isObject(value) && typeof value["id"] === "string"

/**
 * RFC 7396 merge of `patch` onto `target`, plus: a `<redacted>` string keeps
 * the current value (a client echoing `GetConfig` output never overwrites a
 * secret with the placeholder), and arrays of objects with string ids merge by
 * id (entries keep their order, new ids are appended) unless their path is in
 * `replacePaths`.
 */
export const mergePatch = (
  target: unknown,
  patch: unknown,
  replacePaths: ReadonlySet<string> = new Set(),
  path: ReadonlyArray<string> = []
): unknown => {
  if (Array.isArray(patch)) {
    if (!replacePaths.has(pathKey(path)) && Array.isArray(target) && target.every(hasStringId) && patch.every(hasStringId)) {
      const merged: Array<unknown> = target.map((entry) => {
        const update = patch.find((item) => item.id === entry.id)
        return update === undefined ? entry : mergePatch(entry, update, replacePaths, [...path, "[]"])
      })
      for (const item of patch) if (!target.some((entry) => entry.id === item.id)) merged.push(mergePatch(undefined, item, replacePaths, [...path, "[]"]))
      return merged
    }
    return patch.map((item) => mergePatch(undefined, item, replacePaths, [...path, "[]"]))
  }
  if (!Predicate.isObject(patch)) return patch
  const result: { [key: string]: unknown } = Predicate.isObject(target) ? { ...target } : {}
  for (const [key, value] of Object.entries(patch)) {
    if (value === REDACTED_TEXT) continue
    if (value === null) delete result[key]
    else result[key] = mergePatch(result[key], value, replacePaths, [...path, key])
  }
  return result
}

/** The first key a patch must not use, or undefined. */
const forbiddenKey = (value: unknown, path: ReadonlyArray<string> = []): string | undefined => {
  if (Array.isArray(value)) {
    for (const item of value) {
      const found = forbiddenKey(item, path)
      if (found !== undefined) return found
    }
    return undefined
  }
  if (!Predicate.isObject(value)) return undefined
  for (const [key, item] of Object.entries(value)) {
    if (FORBIDDEN_KEYS.has(key)) return pathKey([...path, key])
    const found = forbiddenKey(item, [...path, key])
    if (found !== undefined) return found
  }
  return undefined
}

const valueAt = (value: unknown, path: ReadonlyArray<string>): unknown =>
  path.reduce<unknown>((node, key) => Predicate.isObject(node) ? node[key] : undefined, value)

/** Applies the patch's keys to a YAML document, taking each new value from `merged`; untouched nodes keep their comments. */
const patchDocument = (document: Yaml.Document, patch: { readonly [key: string]: unknown }, merged: unknown, path: ReadonlyArray<string>): void => {
  for (const [key, value] of Object.entries(patch)) {
    if (value === REDACTED_TEXT) continue
    const at = [...path, key]
    if (value === null) {
      document.deleteIn(at)
    } else if (Predicate.isObject(value) && Yaml.isMap(document.getIn(at, true))) {
      patchDocument(document, value, merged, at)
    } else {
      document.setIn(at, document.createNode(valueAt(merged, at)))
    }
  }
}

const render = (file: string, text: string, patch: { readonly [key: string]: unknown }, merged: unknown): string => {
  if (NodePath.extname(file).toLowerCase() === ".json") return `${JSON.stringify(merged, null, 2)}\n`
  const document = Yaml.parseDocument(text, { uniqueKeys: true, intAsBigInt: true })
  if (document.errors.length > 0 || !Yaml.isMap(document.contents)) return Yaml.stringify(merged)
  patchDocument(document, patch, merged, [])
  return document.toString()
}

/** Temp file beside the target (same filesystem), fsync, rename: a reader sees the old file or the new one, never half. */
const writeAtomically = (file: string, text: string) =>
  Effect.tryPromise({
    try: async () => {
      await NodeFs.mkdir(NodePath.dirname(file), { recursive: true })
      const mode = await NodeFs.stat(file).then((stats) => stats.mode & 0o777, () => 0o600)
      const temp = `${file}.${process.pid}.${randomUUID()}.tmp`
      try {
        const handle = await NodeFs.open(temp, "wx", mode)
        try {
          await handle.writeFile(text, "utf8")
          await handle.sync()
        } finally {
          await handle.close()
        }
        await NodeFs.rename(temp, file)
      } catch (error) {
        await NodeFs.rm(temp, { force: true })
        throw error
      }
    },
    catch: (cause) => new ConfigWriteFailed({ path: file, message: `cannot write the config file: ${describe(cause)}` })
  })

export interface ConfigPatcher {
  readonly snapshot: Effect.Effect<ConfigSnapshot, ConfigWriteFailed>
  readonly patch: (request: PatchRequest) => Effect.Effect<PatchResult, ConfigConflict | ConfigInvalid | ConfigWriteFailed>
}

export const make = Effect.gen(function*() {
  const appConfig = yield* AppConfig
  const file = appConfig.file
  // One patch at a time, so the hash check and the write cannot interleave with another patch.
  const lock = yield* Semaphore.make(1)

  const snapshot = Effect.gen(function*() {
    const current = yield* readFile(file)
    return {
      path: file,
      exists: current !== undefined,
      hash: current?.hash ?? null,
      config: encodeConfig(yield* appConfig.get)
    }
  })

  const patch = (request: PatchRequest) =>
    lock.withPermits(1)(Effect.gen(function*() {
      const forbidden = forbiddenKey(request.patch)
      if (forbidden !== undefined) return yield* new ConfigInvalid({ message: `the patch uses a reserved key at ${forbidden}`, issues: [{ path: forbidden, message: "reserved key" }] })
      const current = yield* readFile(file)
      if (current !== undefined && request.baseHash === undefined) {
        return yield* new ConfigConflict({ message: "config base hash required; re-run GetConfig and retry", currentHash: current.hash })
      }
      if (request.baseHash !== undefined && request.baseHash !== current?.hash) {
        return yield* new ConfigConflict({ message: "config changed since last load; re-run GetConfig and retry", currentHash: current?.hash ?? null })
      }
      const text = current?.text ?? ""
      const raw = yield* parseConfigText(text, file).pipe(Effect.mapError(invalid("invalid config; fix before patching")))
      const merged = mergePatch(raw, request.patch, new Set(request.replacePaths ?? []))
      const next = render(file, text, request.patch, merged)
      yield* decodeConfigText(next, file).pipe(Effect.mapError(invalid("invalid config")))
      yield* writeAtomically(file, next)
      const { changed } = yield* appConfig.reload.pipe(Effect.mapError(invalid("the written config did not load")))
      return { changed, hash: hashOf(next), config: encodeConfig(yield* appConfig.get) }
    }))

  const patcher: ConfigPatcher = { snapshot, patch }
  return patcher
})
