/**
 * The agent workspace: the folder of user-editable markdown files that give an
 * agent its instructions, persona and memory. This module seeds a new
 * workspace and loads its bootstrap files for the system prompt, following
 * OpenClaw's file order, per-session filtering and size caps.
 */
import { Effect, FileSystem, Option, Schema } from "effect"
import type { PlatformError } from "effect/PlatformError"
import { homedir } from "node:os"
import * as NodePath from "node:path"
import type { SessionKind } from "../session/SessionKey.ts"
import { AGENTS_TEMPLATE } from "./templates/AGENTS.ts"
import { BOOTSTRAP_TEMPLATE } from "./templates/BOOTSTRAP.ts"
import { HEARTBEAT_TEMPLATE } from "./templates/HEARTBEAT.ts"
import { IDENTITY_TEMPLATE } from "./templates/IDENTITY.ts"
import { SOUL_TEMPLATE } from "./templates/SOUL.ts"
import { TOOLS_TEMPLATE } from "./templates/TOOLS.ts"
import { USER_TEMPLATE } from "./templates/USER.ts"

export const WorkspaceOperation = Schema.Literals(["resolve", "mkdir", "read", "write", "realpath"])
export type WorkspaceOperation = typeof WorkspaceOperation.Type

export class WorkspaceError extends Schema.TaggedError<WorkspaceError>()("WorkspaceError", {
  path: Schema.String,
  operation: WorkspaceOperation,
  message: Schema.String
}) {}

/** Files every workspace is expected to hold; absent ones are injected as a `[MISSING]` marker. */
export const SEED_FILE_NAMES = ["AGENTS.md", "SOUL.md", "TOOLS.md", "IDENTITY.md", "USER.md", "HEARTBEAT.md"] as const
export type SeedFileName = (typeof SEED_FILE_NAMES)[number]

export const BOOTSTRAP_RITUAL_FILE = "BOOTSTRAP.md"
/** Both spellings are accepted; when one is a link to the other it is injected once. */
export const MEMORY_FILE_NAMES = ["MEMORY.md", "memory.md"] as const

/** Injection order, as OpenClaw's `loadWorkspaceBootstrapFiles`. */
export const BOOTSTRAP_FILE_ORDER: ReadonlyArray<string> = [...SEED_FILE_NAMES, BOOTSTRAP_RITUAL_FILE, ...MEMORY_FILE_NAMES]

export const DEFAULT_BOOTSTRAP_MAX_CHARS = 20_000
export const DEFAULT_BOOTSTRAP_TOTAL_MAX_CHARS = 150_000
/** Below this much remaining budget a further file would be mostly marker, so loading stops. */
export const MIN_BOOTSTRAP_FILE_BUDGET_CHARS = 64

const HEAD_RATIO = 0.7
const TAIL_RATIO = 0.2

export const SEED_TEMPLATES: Readonly<Record<SeedFileName | typeof BOOTSTRAP_RITUAL_FILE, string>> = {
  "AGENTS.md": AGENTS_TEMPLATE,
  "SOUL.md": SOUL_TEMPLATE,
  "TOOLS.md": TOOLS_TEMPLATE,
  "IDENTITY.md": IDENTITY_TEMPLATE,
  "USER.md": USER_TEMPLATE,
  "HEARTBEAT.md": HEARTBEAT_TEMPLATE,
  "BOOTSTRAP.md": BOOTSTRAP_TEMPLATE
}

// Sub-agents work on a narrow task: persona, user profile and memory would only
// cost tokens and leak private context into delegated work.
const SUBAGENT_ALLOWLIST: ReadonlySet<string> = new Set(["AGENTS.md", "TOOLS.md"])
// Cron runs act for the user but outside a conversation: persona and profile
// matter, the heartbeat checklist, first-run ritual and memory do not.
const CRON_ALLOWLIST: ReadonlySet<string> = new Set(["AGENTS.md", "TOOLS.md", "SOUL.md", "IDENTITY.md", "USER.md"])

export interface EnsureWorkspaceOptions {
  /** Create only the directory, never seed files (OpenClaw `agents.defaults.skipBootstrap`). */
  readonly skipBootstrap?: boolean | undefined
}

export interface EnsureWorkspaceResult {
  /** Absolute workspace path. */
  readonly dir: string
  /** Names of the files written by this call, in seed order. */
  readonly created: ReadonlyArray<string>
  /** True when none of the seed files existed beforehand. */
  readonly brandNew: boolean
}

export interface LoadBootstrapOptions {
  readonly sessionKind?: SessionKind | undefined
  /** Per-file cap (default 20000); invalid values fall back to the default. */
  readonly maxChars?: number | undefined
  /** Cap over all files together (default 150000); invalid values fall back to the default. */
  readonly totalMaxChars?: number | undefined
}

export interface BootstrapFile {
  readonly name: string
  /** Absolute path the file was (or would have been) read from. */
  readonly path: string
  /** Text to inject: trimmed, possibly truncated, or the `[MISSING]` marker. */
  readonly content: string
  /** Length of the file as read from disk; 0 when missing. */
  readonly rawChars: number
  readonly truncated: boolean
  readonly missing: boolean
}

const isNotFound = (error: PlatformError): boolean => error.reason._tag === "NotFound"
const isAlreadyExists = (error: PlatformError): boolean => error.reason._tag === "AlreadyExists"

const toWorkspaceError = (path: string, operation: WorkspaceOperation) => (error: PlatformError) =>
  new WorkspaceError({ path, operation, message: error.message })

/** Resolves `~` and relative paths to an absolute workspace path. */
export const resolveWorkspaceDir = (dir: string): Effect.Effect<string, WorkspaceError> => {
  const trimmed = dir.trim()
  if (trimmed.length === 0 || trimmed.includes("\0")) {
    return Effect.fail(new WorkspaceError({ path: dir, operation: "resolve", message: "workspace path is empty or invalid" }))
  }
  const expanded = trimmed === "~"
    ? homedir()
    : trimmed.startsWith("~/")
    ? NodePath.join(homedir(), trimmed.slice(2))
    : trimmed
  return Effect.succeed(NodePath.resolve(expanded))
}

const positiveIntOr = (value: number | undefined, fallback: number): number =>
  value !== undefined && Number.isFinite(value) && value > 0 ? Math.floor(value) : fallback

/**
 * Creates the workspace directory and writes any seed file that does not exist
 * yet. Existing files are never touched: writes use exclusive create, so a file
 * appearing concurrently wins over the template.
 */
export const ensureWorkspace = Effect.fn("Workspace.ensureWorkspace")(
  function*(dir: string, options?: EnsureWorkspaceOptions) {
    const fs = yield* FileSystem.FileSystem
    const root = yield* resolveWorkspaceDir(dir)
    yield* fs.makeDirectory(root, { recursive: true }).pipe(Effect.mapError(toWorkspaceError(root, "mkdir")))
    if (options?.skipBootstrap === true) {
      return { dir: root, created: [], brandNew: false } satisfies EnsureWorkspaceResult
    }

    const existing = yield* Effect.forEach(SEED_FILE_NAMES, (name) => {
      const path = NodePath.join(root, name)
      return fs.exists(path).pipe(Effect.mapError(toWorkspaceError(path, "read")))
    })
    const brandNew = existing.every((found) => !found)
    const names: ReadonlyArray<SeedFileName | typeof BOOTSTRAP_RITUAL_FILE> = brandNew
      ? [...SEED_FILE_NAMES, BOOTSTRAP_RITUAL_FILE]
      : SEED_FILE_NAMES

    const created: Array<string> = []
    for (const name of names) {
      const path = NodePath.join(root, name)
      const wrote = yield* fs.writeFileString(path, SEED_TEMPLATES[name], { flag: "wx" }).pipe(
        Effect.as(true),
        Effect.catchIf(isAlreadyExists, () => Effect.succeed(false)),
        Effect.mapError(toWorkspaceError(path, "write"))
      )
      if (wrote) created.push(name)
    }
    return { dir: root, created, brandNew } satisfies EnsureWorkspaceResult
  }
)

/** Avoids cutting a UTF-16 surrogate pair in half when slicing from the start. */
const sliceHead = (text: string, chars: number): string => {
  if (chars <= 0) return ""
  const end = Math.min(chars, text.length)
  const last = text.charCodeAt(end - 1)
  return last >= 0xd800 && last <= 0xdbff ? text.slice(0, end - 1) : text.slice(0, end)
}

/** Avoids starting the tail with the second half of a surrogate pair. */
const sliceTail = (text: string, chars: number): string => {
  if (chars <= 0) return ""
  const start = Math.max(0, text.length - chars)
  const first = text.charCodeAt(start)
  return first >= 0xdc00 && first <= 0xdfff ? text.slice(start + 1) : text.slice(start)
}

const clampToBudget = (text: string, budget: number): string => {
  if (text.length <= budget) return text
  if (budget <= 3) return sliceHead(text, budget)
  return `${sliceHead(text, budget - 1)}…`
}

export interface TrimmedBootstrapContent {
  readonly content: string
  readonly truncated: boolean
  /** Length after `trimEnd()`, before truncation. */
  readonly originalChars: number
}

/**
 * OpenClaw's per-file truncation: keep the first 70% and last 20% of the cap,
 * joined by two marker lines that tell the model where to read the rest.
 */
export const trimBootstrapContent = (content: string, name: string, maxChars: number): TrimmedBootstrapContent => {
  const trimmed = content.trimEnd()
  if (trimmed.length <= maxChars) return { content: trimmed, truncated: false, originalChars: trimmed.length }
  const headChars = Math.floor(maxChars * HEAD_RATIO)
  const tailChars = Math.floor(maxChars * TAIL_RATIO)
  const marker = [
    "",
    `[...truncated, read ${name} for full content...]`,
    `…(truncated ${name}: kept ${headChars}+${tailChars} chars of ${trimmed.length})…`,
    ""
  ].join("\n")
  return {
    content: [sliceHead(trimmed, headChars), marker, sliceTail(trimmed, tailChars)].join("\n"),
    truncated: true,
    originalChars: trimmed.length
  }
}

export const missingMarker = (path: string): string => `[MISSING] Expected at: ${path}`

export const allowedForSession = (name: string, sessionKind: SessionKind | undefined): boolean => {
  if (sessionKind === "subagent") return SUBAGENT_ALLOWLIST.has(name)
  if (sessionKind === "cron") return CRON_ALLOWLIST.has(name)
  return true
}

interface RawFile {
  readonly name: string
  readonly path: string
  readonly raw: Option.Option<string>
}

const readOptional = (fs: FileSystem.FileSystem, path: string) =>
  fs.readFileString(path).pipe(
    Effect.map(Option.some),
    Effect.catchIf(isNotFound, () => Effect.succeed(Option.none<string>())),
    Effect.mapError(toWorkspaceError(path, "read"))
  )

/**
 * Loads the workspace files injected into the system prompt, in OpenClaw's
 * order, filtered for the session kind and capped per file and in total.
 * Seed files that are absent become a `[MISSING]` marker; BOOTSTRAP.md and the
 * memory files are optional and simply omitted. Whitespace-only files and files
 * past the total budget are dropped. Unreadable files (other than not-found)
 * fail with `WorkspaceError`.
 */
export const loadBootstrapFiles = Effect.fn("Workspace.loadBootstrapFiles")(
  function*(dir: string, options?: LoadBootstrapOptions) {
    const fs = yield* FileSystem.FileSystem
    const root = yield* resolveWorkspaceDir(dir)
    const sessionKind = options?.sessionKind
    const maxChars = positiveIntOr(options?.maxChars, DEFAULT_BOOTSTRAP_MAX_CHARS)
    const totalMaxChars = positiveIntOr(options?.totalMaxChars, DEFAULT_BOOTSTRAP_TOTAL_MAX_CHARS)

    const files: Array<RawFile> = []
    for (const name of SEED_FILE_NAMES) {
      if (!allowedForSession(name, sessionKind)) continue
      const path = NodePath.join(root, name)
      files.push({ name, path, raw: yield* readOptional(fs, path) })
    }
    if (allowedForSession(BOOTSTRAP_RITUAL_FILE, sessionKind)) {
      const path = NodePath.join(root, BOOTSTRAP_RITUAL_FILE)
      const raw = yield* readOptional(fs, path)
      if (Option.isSome(raw)) files.push({ name: BOOTSTRAP_RITUAL_FILE, path, raw })
    }
    const seenMemory = new Set<string>()
    for (const name of MEMORY_FILE_NAMES) {
      if (!allowedForSession(name, sessionKind)) continue
      const path = NodePath.join(root, name)
      const raw = yield* readOptional(fs, path)
      if (Option.isNone(raw)) continue
      const real = yield* fs.realPath(path).pipe(Effect.mapError(toWorkspaceError(path, "realpath")))
      if (seenMemory.has(real)) continue
      seenMemory.add(real)
      files.push({ name, path, raw })
    }

    return applyBootstrapBudget(files, maxChars, totalMaxChars)
  }
)

const applyBootstrapBudget = (
  files: ReadonlyArray<RawFile>,
  maxChars: number,
  totalMaxChars: number
): ReadonlyArray<BootstrapFile> => {
  const result: Array<BootstrapFile> = []
  let remaining = totalMaxChars
  for (const file of files) {
    if (remaining <= 0) break
    if (Option.isNone(file.raw)) {
      // Markers bypass the per-file floor: telling the model a file is missing
      // is worth a few chars even when little budget remains.
      const marker = missingMarker(file.path)
      const content = clampToBudget(marker, remaining)
      if (content.length === 0) break
      remaining -= content.length
      result.push({
        name: file.name,
        path: file.path,
        content,
        rawChars: 0,
        truncated: content.length < marker.length,
        missing: true
      })
      continue
    }
    if (remaining < MIN_BOOTSTRAP_FILE_BUDGET_CHARS) break
    const raw = file.raw.value
    const trimmed = trimBootstrapContent(raw, file.name, Math.max(1, Math.min(maxChars, remaining)))
    const content = clampToBudget(trimmed.content, remaining)
    if (content.length === 0) continue
    remaining -= content.length
    result.push({
      name: file.name,
      path: file.path,
      content,
      rawChars: raw.length,
      truncated: trimmed.truncated || content.length < trimmed.content.length,
      missing: false
    })
  }
  return result
}
