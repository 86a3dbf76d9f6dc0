/**
 * The one writer of the config file, for every surface that edits it (the
 * RPC's GetConfig/PatchConfig, OpenClaw's config.get/patch/apply): one lock,
 * so two writers holding the same base hash cannot both pass the check.
 *
 * The file's hash is the optimistic-concurrency token (sha256 of its bytes,
 * as OpenClaw's config.get `hash`). A patch is RFC 7396 with OpenClaw's by-id
 * merge for arrays of objects; an apply replaces the whole file. Either way
 * the result is validated as the exact text that will be written, written
 * atomically (temp file, fsync, rename) and then reloaded through AppConfig.
 * A YAML file is patched in place, so comments outside the changed keys stay.
 */
import { createHash } from "node:crypto"
import * as NodeFs from "node:fs/promises"
import * as NodePath from "node:path"
import { Context, Effect, Layer, Predicate, Semaphore } from "effect"
import type * as Yaml from "yaml"
import { writeFileAtomic } from "../platform/AtomicFile.ts"
import { ConfigConflict, ConfigInvalid, ConfigWriteFailed } from "./ConfigErrors.ts"
import { AppConfig } from "./AppConfig.ts"
import { type BeamclawConfigEncodedValue, type ConfigError, decodeConfigText, encodeConfig, formatIssueLine, parseConfigText, REDACTED_TEXT } from "./ConfigLoader.ts"
import { Paths } from "./Paths.ts"
import { exposureProblem } from "../gateway/auth/Exposure.ts"
import { isErrno } from "../platform/Errno.ts"

export { ConfigConflict, ConfigInvalid, ConfigWriteFailed }

export type ConfigWriteError = ConfigConflict | ConfigInvalid | ConfigWriteFailed

export interface ConfigFileSnapshot {
  /** The config file the gateway reads. */
  readonly path: string
  readonly exists: boolean
  /** The file's text as on disk (secrets included); `null` when there is no file. */
  readonly raw: string | null
  /** sha256 (hex) of the file's bytes; `null` when there is no file. */
  readonly hash: string | null
  /** The effective config (file, then environment and flags), secrets redacted. */
  readonly config: BeamclawConfigEncodedValue
}

export interface PatchRequest {
  readonly patch: { readonly [key: string]: unknown }
  /** Required once the file exists. */
  readonly baseHash?: string | undefined
  /** Dotted paths whose arrays the patch replaces whole instead of merging by id. */
  readonly replacePaths?: ReadonlyArray<string> | undefined
}

export interface ApplyRequest {
  /** The whole new config, as JSON (or YAML); `<redacted>` keeps the secret at the same path. */
  readonly raw: string
  /** Required once the file exists. */
  readonly baseHash?: string | undefined
}

export interface WriteResult {
  readonly path: string
  /** Effective leaf paths that changed (`gateway.port`); empty for a no-op. */
  readonly changed: ReadonlyArray<string>
  /** The new file's hash, for the next write. */
  readonly hash: string
  readonly config: BeamclawConfigEncodedValue
}

export interface ConfigWriterShape {
  readonly snapshot: Effect.Effect<ConfigFileSnapshot, ConfigWriteFailed>
  readonly patch: (request: PatchRequest) => Effect.Effect<WriteResult, ConfigWriteError>
  readonly apply: (request: ApplyRequest) => Effect.Effect<WriteResult, ConfigWriteError>
}

export const hashOf = (bytes: Uint8Array | string): string => createHash("sha256").update(bytes).digest("hex")

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
      isErrno(cause, "ENOENT")
        ? Effect.succeed(undefined)
        : Effect.fail(new ConfigWriteFailed({ path: file, message: `cannot read the config file: ${describe(cause)}` }))
    )
  )

const invalid = (message: string) => (error: ConfigError) =>
  new ConfigInvalid({
    message: `${message}: ${error.issues.slice(0, 3).map(formatIssueLine).join("; ")}${error.issues.length > 3 ? ` (+${error.issues.length - 3} more issues)` : ""}`,
    issues: error.issues
  })

/** `agents.list`, `models.providers.custom.models[].input` (OpenClaw's replacePaths spelling). */
const pathKey = (path: ReadonlyArray<string>) =>
  path.reduce((text, segment) => segment === "[]" ? `${text}[]` : text === "" ? segment : `${text}.${segment}`, "")

const hasStringId = (value: unknown): value is { readonly id: string } =>
  Predicate.isObject(value) && typeof value["id"] === "string"

/**
 * RFC 7396 merge of `patch` onto `target`, plus: a `<redacted>` string keeps
 * the current value (a client echoing a snapshot never overwrites a secret
 * with the placeholder), and arrays of objects with string ids merge by id
 * (entries keep their order, new ids are appended) unless their path is in
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

/**
 * `<redacted>` anywhere in a replacement config keeps the value at the same
 * path (list entries matched by id, else by position); with nothing there it
 * stays as written, and validation decides.
 */
export const restoreRedacted = (next: unknown, previous: unknown): unknown => {
  // With nothing in the file to keep (the secret comes from the environment or a flag), the key is left out.
  if (next === REDACTED_TEXT) return previous
  if (Array.isArray(next)) {
    const before = Array.isArray(previous) ? previous : []
    return next.map((item, index) =>
      restoreRedacted(item, hasStringId(item) ? before.find((entry) => hasStringId(entry) && entry.id === item.id) : before[index])
    )
  }
  if (Predicate.isObject(next)) {
    return Object.fromEntries(Object.entries(next).map(([key, value]) => [key, restoreRedacted(value, Predicate.isObject(previous) ? previous[key] : undefined)]))
  }
  return next
}

/** Where a `<redacted>` placeholder is left in a config to be written (nothing to restore there), or undefined. */
const redactedPlaceholderPath = (value: unknown, path: ReadonlyArray<string> = []): string | undefined => {
  if (value === REDACTED_TEXT) return pathKey(path)
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = redactedPlaceholderPath(item, [...path, `[${index}]`])
      if (found !== undefined) return found
    }
    return undefined
  }
  if (!Predicate.isObject(value)) return undefined
  for (const [key, item] of Object.entries(value)) {
    const found = redactedPlaceholderPath(item, [...path, key])
    if (found !== undefined) return found
  }
  return undefined
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

const refuseForbidden = (what: "patch" | "config", value: unknown): Effect.Effect<void, ConfigInvalid> => {
  const forbidden = forbiddenKey(value)
  return forbidden === undefined
    ? Effect.void
    : Effect.fail(new ConfigInvalid({ message: `the ${what} uses a reserved key at ${forbidden}`, issues: [{ path: forbidden, message: "reserved key" }] }))
}

/**
 * The YAML library, which this module needs only from the first edit on
 * (most gateways never write their config), so it is not one of the start's
 * imports. It is part of this program's own bundle, so failing to load it is
 * a defect, not an outcome of the edit.
 */
const yamlLibrary: Effect.Effect<typeof Yaml> = Effect.orDie(Effect.tryPromise(() => import("yaml")))

/**
 * A client's config text: JSON, or YAML (a JSON superset that takes most of
 * the JSON5 habits OpenClaw clients send). It must be a mapping.
 */
export const parseRaw = (raw: string): Effect.Effect<{ readonly [key: string]: unknown }, ConfigInvalid> =>
  Effect.flatMap(yamlLibrary, (yaml) => Effect.try({
    try: (): unknown => yaml.parse(raw, { uniqueKeys: true }),
    catch: (cause) => {
      const message = `raw is not valid JSON: ${cause instanceof Error ? cause.message.split("\n")[0] : String(cause)}`
      return new ConfigInvalid({ message, issues: [{ path: "", message }] })
    }
  })).pipe(
    Effect.flatMap((value) =>
      Predicate.isObject(value)
        ? Effect.succeed(value)
        : Effect.fail(new ConfigInvalid({ message: "raw must be an object", issues: [{ path: "", message: "raw must be an object" }] }))
    )
  )

const valueAt = (value: unknown, path: ReadonlyArray<string>): unknown =>
  path.reduce<unknown>((node, key) => Predicate.isObject(node) ? node[key] : undefined, value)

/** Applies the patch's keys to a YAML document, taking each new value from `merged`; untouched nodes keep their comments. */
const patchDocument = (yaml: typeof Yaml, document: Yaml.Document, patch: { readonly [key: string]: unknown }, merged: unknown, path: ReadonlyArray<string>): void => {
  for (const [key, value] of Object.entries(patch)) {
    if (value === REDACTED_TEXT) continue
    const at = [...path, key]
    if (value === null) {
      document.deleteIn(at)
    } else if (Predicate.isObject(value) && yaml.isMap(document.getIn(at, true))) {
      patchDocument(yaml, document, value, merged, at)
    } else {
      document.setIn(at, document.createNode(valueAt(merged, at)))
    }
  }
}

const isJson = (file: string) => NodePath.extname(file).toLowerCase() === ".json"

const renderPatched = (yaml: typeof Yaml, file: string, text: string, patch: { readonly [key: string]: unknown }, merged: unknown): string => {
  if (isJson(file)) return `${JSON.stringify(merged, null, 2)}\n`
  const document = yaml.parseDocument(text, { uniqueKeys: true, intAsBigInt: true })
  if (document.errors.length > 0 || !yaml.isMap(document.contents)) return yaml.stringify(merged)
  patchDocument(yaml, document, patch, merged, [])
  return document.toString()
}

const renderWhole = (yaml: typeof Yaml, file: string, value: unknown): string =>
  isJson(file) ? `${JSON.stringify(value, null, 2)}\n` : yaml.stringify(value)

/** Temp file beside the target (same filesystem), fsync, rename: a reader sees the old file or the new one, never half. */
const writeAtomically = (file: string, text: string) =>
  Effect.tryPromise({
    try: async () => {
      // A config that is a symlink is written where it points: renaming over the link would turn it into a
      // plain file and leave the real one (in a dotfiles repository, say) behind.
      const target = await NodeFs.realpath(file).catch(() => file)
      // The config keeps the mode its owner gave it.
      const mode = await NodeFs.stat(target).then((stats) => stats.mode & 0o777, () => 0o600)
      await writeFileAtomic(target, text, { mode, directoryMode: 0o755 })
    },
    catch: (cause) => new ConfigWriteFailed({ path: file, message: `cannot write the config file: ${describe(cause)}` })
  })

export const make = Effect.gen(function*() {
  const appConfig = yield* AppConfig
  // The file AppConfig loads (Paths.configFile); AppConfig.file reads "(in memory)" for a fixed test config.
  const file = (yield* Paths).configFile
  const lock = yield* Semaphore.make(1)

  const snapshot: ConfigWriterShape["snapshot"] = Effect.gen(function*() {
    const current = yield* readFile(file)
    return {
      path: file,
      exists: current !== undefined,
      raw: current?.text ?? null,
      hash: current?.hash ?? null,
      config: encodeConfig(yield* appConfig.get)
    }
  }).pipe(Effect.withSpan("ConfigWriter.snapshot"))

  /**
   * Under the lock: checks the base hash against the file as it is now,
   * builds the next text from the current raw config (before env
   * substitution, so `${VAR}` stays), validates, writes and reloads.
   */
  const write = (
    baseHash: string | undefined,
    next: (current: { readonly text: string; readonly raw: unknown }, yaml: typeof Yaml) => string
  ): Effect.Effect<WriteResult, ConfigWriteError> =>
    lock.withPermits(1)(Effect.gen(function*() {
      const yaml = yield* yamlLibrary
      const current = yield* readFile(file)
      if (current !== undefined && baseHash === undefined) {
        return yield* new ConfigConflict({ message: "config base hash required; read the config again and retry", currentHash: current.hash })
      }
      if (baseHash !== undefined && baseHash !== current?.hash) {
        return yield* new ConfigConflict({ message: "config changed since last load; read the config again and retry", currentHash: current?.hash ?? null })
      }
      const text = current?.text ?? ""
      const raw = yield* parseConfigText(text, file).pipe(Effect.mapError(invalid("invalid config; fix before patching")))
      const rendered = next({ text, raw }, yaml)
      const decoded = yield* decodeConfigText(rendered, file).pipe(Effect.mapError(invalid("invalid config")))
      // What the gateway would refuse to start on (password mode without a password, auth none off loopback) is
      // refused here too: written, it would lock every client out, the one that could undo it included.
      const exposure = exposureProblem(decoded)
      if (exposure !== undefined) return yield* new ConfigInvalid({ message: `invalid config: ${exposure}`, issues: [{ path: "gateway", message: exposure }] })
      const placeholder = redactedPlaceholderPath(yield* parseConfigText(rendered, file).pipe(Effect.mapError(invalid("invalid config"))))
      if (placeholder !== undefined) {
        const message = `${placeholder} is the ${REDACTED_TEXT} placeholder, but there is no secret in the file to keep there (it comes from the environment or a flag): give the value itself, or leave the key out`
        return yield* new ConfigInvalid({ message: `invalid config: ${message}`, issues: [{ path: placeholder, message }] })
      }
      yield* writeAtomically(file, rendered)
      const { changed } = yield* appConfig.reload.pipe(Effect.mapError(invalid("the written config did not load")))
      return { path: file, changed, hash: hashOf(rendered), config: encodeConfig(yield* appConfig.get) }
    }))

  const patch = Effect.fn("ConfigWriter.patch")(function*(request: PatchRequest) {
    yield* refuseForbidden("patch", request.patch)
    const replacePaths = new Set(request.replacePaths ?? [])
    return yield* write(request.baseHash, ({ text, raw }, yaml) => renderPatched(yaml, file, text, request.patch, mergePatch(raw, request.patch, replacePaths)))
  })

  const apply = Effect.fn("ConfigWriter.apply")(function*(request: ApplyRequest) {
    const input = yield* parseRaw(request.raw)
    yield* refuseForbidden("config", input)
    return yield* write(request.baseHash, ({ raw }, yaml) => renderWhole(yaml, file, restoreRedacted(input, raw)))
  })

  const shape: ConfigWriterShape = { snapshot, patch, apply }
  return shape
})

export class ConfigWriter extends Context.Service<ConfigWriter, ConfigWriterShape>()("beamclaw/config/ConfigWriter") {
  static readonly layer = Layer.effect(ConfigWriter, Effect.map(make, ConfigWriter.of))
}
