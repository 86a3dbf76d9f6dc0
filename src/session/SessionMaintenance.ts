/**
 * Session maintenance, OpenClaw's `session.maintenance`: what the sessions
 * keep on disk stays bounded. Every OpenAI request without `user` makes a
 * session of its own, so without it the index and the sessions directory
 * grow with traffic, forever.
 *
 * Rules, per agent, in order:
 * - age: a session untouched for `pruneAfter` (30 d) is removed;
 * - count: beyond `maxEntries` (5,000) sessions, the oldest are removed;
 * - archives: transcripts set aside by a reset or delete are erased after
 *   `resetArchiveRetention` (kept by default);
 * - disk: when the sessions directory passes `maxDiskBytes` (10 GiB), the
 *   oldest archives and repair backups go first, then the oldest sessions,
 *   until it is under `highWaterBytes` (80%).
 * Conversations a channel points at (the main session, DMs, groups, channels,
 * threads), live sessions and recently active ones (`preserveRecent`) are
 * never removed. A removed session's transcript is archived as
 * `.deleted.<ts>`, as a manual delete; one made for a single request or by
 * automation (cron, hooks, sub-agents) is erased. `mode: warn` only reports.
 *
 * When: a minute after start, then at the next age boundary and, while
 * sessions are written, every 30 minutes, or at once when an index passes
 * its cap; an idle gateway holds one timer, for the next boundary. The
 * `sessions.cleanup` method runs a pass on request.
 */
import { Clock, Context, Duration, Effect, Layer, Option, Queue, Semaphore, Stream } from "effect"
import { AppConfig } from "../config/AppConfig.ts"
import type { BeamclawConfig } from "../config/ConfigSchema.ts"
import { byteSize, durationMs, formatBytes } from "../config/Units.ts"
import * as SessionKey from "./SessionKey.ts"
import { Sessions } from "./Sessions.ts"
import type { CleanupSummary, DiskBudgetReport, RemovalReason } from "./CleanupSummary.ts"
import { type SessionEntry, SessionStore, type StoreError, type StoredFile } from "./SessionStore.ts"

export type { CleanupSummary, DiskBudgetReport } from "./CleanupSummary.ts"

export interface MaintenancePolicy {
  readonly mode: "enforce" | "warn"
  readonly pruneAfterMs: number | undefined
  readonly maxEntries: number
  readonly preserveRecentMs: number | undefined
  readonly archiveRetentionMs: number | undefined
  readonly maxDiskBytes: number | undefined
  readonly highWaterBytes: number
}

type MaintenanceConfig = BeamclawConfig["session"]["maintenance"]

const durationOrOff = (value: string | false | undefined): number | undefined =>
  value === undefined || value === false || value === "false" ? undefined : durationMs(value)

/** The config's spellings as numbers; a budget of 0 or false is no budget, as OpenClaw's. */
export const resolvePolicy = (config: MaintenanceConfig): MaintenancePolicy => {
  const max = config.maxDiskBytes === false || config.maxDiskBytes === "false" ? undefined : byteSize(config.maxDiskBytes)
  const maxDiskBytes = max === undefined || max === 0 ? undefined : max
  const high = config.highWaterBytes === undefined || config.highWaterBytes === false || config.highWaterBytes === "false"
    ? undefined
    : byteSize(config.highWaterBytes)
  return {
    mode: config.mode,
    pruneAfterMs: durationOrOff(config.pruneAfter),
    maxEntries: config.maxEntries,
    preserveRecentMs: durationOrOff(config.preserveRecent),
    archiveRetentionMs: durationOrOff(config.resetArchiveRetention),
    maxDiskBytes,
    // A target that resolves to zero (or above the budget) falls back to 80% of the budget.
    highWaterBytes: maxDiskBytes === undefined
      ? 0
      : high === undefined || high === 0 || high > maxDiskBytes
      ? Math.floor(maxDiskBytes * 0.8)
      : high
  }
}

/**
 * How maintenance treats a session, by its key: `kept` for conversations a
 * channel points at; `disposable` for sessions made for one request or by
 * automation (their transcript is erased when they go); `durable` for the
 * rest (their transcript is archived).
 */
export type Retention = "kept" | "durable" | "disposable"

export const retentionOf = (key: SessionKey.ParsedSessionKey): Retention => {
  switch (key.kind) {
    case "main":
    case "direct":
    case "group":
    case "channel":
    case "thread":
      return "kept"
    case "cron":
    case "hook":
    case "subagent":
      return "disposable"
    case "openai":
      // `openai:<uuid>` / `openresponses:<uuid>`: a request without `user`; `openai-user:<user>` is a person's.
      return key.rest.startsWith("openai:") || key.rest.startsWith("openresponses:") ? "disposable" : "durable"
    case "other":
      return "durable"
  }
}

export interface SessionRowView {
  readonly key: string
  readonly entry: SessionEntry
  readonly live: boolean
}

export interface Removal {
  readonly key: string
  readonly entry: SessionEntry
  readonly reason: RemovalReason
  readonly transcript: "archive" | "erase"
}

export interface PlanOptions {
  readonly now: number
  readonly mainKey: string
  /** A key to keep whatever the rules say (OpenClaw's `--active-key`). */
  readonly activeKey?: string | undefined
}

/** Whether the rules may remove this session at all, and how its transcript goes. */
const removable = (row: SessionRowView, policy: MaintenancePolicy, options: PlanOptions): "archive" | "erase" | undefined => {
  if (row.live || row.key === options.activeKey) return undefined
  const parsed = SessionKey.parse(row.key, { mainKey: options.mainKey })
  // A key this version cannot read is left alone: it is not maintenance's to judge.
  if (parsed._tag === "Failure") return undefined
  const retention = retentionOf(parsed.success)
  if (retention === "kept") return undefined
  if (retention === "durable" && options.now - row.entry.updatedAt < (policy.preserveRecentMs ?? 0)) return undefined
  return retention === "disposable" ? "erase" : "archive"
}

/**
 * The sessions the age and count rules remove, oldest first: every session
 * older than `pruneAfter`, then the oldest others while more than
 * `maxEntries` remain. Kept sessions count toward the cap, so an agent with
 * more of them than the cap stays above it.
 */
export const planRemovals = (
  rows: ReadonlyArray<SessionRowView>,
  policy: MaintenancePolicy,
  options: PlanOptions
): ReadonlyArray<Removal> => {
  const oldestFirst = [...rows].sort((a, b) => a.entry.updatedAt - b.entry.updatedAt)
  const removals: Array<Removal> = []
  const removedKeys = new Set<string>()
  if (policy.pruneAfterMs !== undefined) {
    for (const row of oldestFirst) {
      if (options.now - row.entry.updatedAt <= policy.pruneAfterMs) break
      const transcript = removable(row, policy, options)
      if (transcript === undefined) continue
      removals.push({ key: row.key, entry: row.entry, reason: "age", transcript })
      removedKeys.add(row.key)
    }
  }
  let remaining = rows.length - removals.length
  for (const row of oldestFirst) {
    if (remaining <= policy.maxEntries) break
    if (removedKeys.has(row.key)) continue
    const transcript = removable(row, policy, options)
    if (transcript === undefined) continue
    removals.push({ key: row.key, entry: row.entry, reason: "cap", transcript })
    remaining--
  }
  return removals
}

/**
 * When the age rule next has something to do: the soonest time a session
 * that is not kept passes `pruneAfter` (and `preserveRecent`). A write only
 * moves a session's time later, so this holds until the next pass.
 */
export const nextAgeBoundary = (
  rows: ReadonlyArray<SessionRowView>,
  policy: MaintenancePolicy,
  options: PlanOptions
): number | undefined => {
  const pruneAfter = policy.pruneAfterMs
  if (pruneAfter === undefined) return undefined
  let soonest: number | undefined
  for (const row of rows) {
    let due = row.entry.updatedAt + Math.max(pruneAfter, policy.preserveRecentMs ?? 0) + 1
    if (soonest !== undefined && due >= soonest) continue
    if (removable({ ...row, live: false }, policy, { ...options, now: due }) === undefined) continue
    // A live session past its time is looked at again once it may have been passivated.
    if (row.live && due <= options.now) due = options.now + LIVE_RECHECK_MS
    if (soonest === undefined || due < soonest) soonest = due
  }
  return soonest
}

const LIVE_RECHECK_MS = 5 * 60_000
const MIN_GAP_MS = 1_000
const RETRY_AFTER_MS = 60_000

export interface RunOptions {
  /** One agent; all agents with stored sessions when absent. */
  readonly agentId?: string | undefined
  /** Apply even in `warn` mode. */
  readonly enforce?: boolean | undefined
  /** Report only. */
  readonly dryRun?: boolean | undefined
  readonly activeKey?: string | undefined
  /** Also remove entries whose transcript is missing (not live, not the main session). */
  readonly fixMissing?: boolean | undefined
}

export interface LastPass {
  readonly at: number
  readonly trigger: "start" | "boundary" | "recheck" | "cap" | "config" | "request"
  readonly summaries: ReadonlyArray<CleanupSummary>
}

export interface SessionMaintenanceOptions {
  /** The store is read-only: no automatic passes, and a requested one only reports. */
  readonly readOnly?: boolean | undefined
  /** Passes on their own (the gateway); false for a command that runs one pass on request. Default true. */
  readonly automatic?: boolean | undefined
  /** The first pass after start. Default 60 s. */
  readonly firstPassAfter?: Duration.Input | undefined
  /** While sessions are written, a full pass (disk budget included) at most this often. Default 30 min. */
  readonly recheckEvery?: Duration.Input | undefined
}

export class SessionMaintenance extends Context.Service<SessionMaintenance, {
  /** A pass now (OpenClaw's `sessions.cleanup`), after any pass in progress. */
  readonly run: (options: RunOptions) => Effect.Effect<ReadonlyArray<CleanupSummary>, StoreError>
  /** The last automatic or requested pass. */
  readonly last: Effect.Effect<LastPass | undefined>
}>()("beamclaw/session/SessionMaintenance") {
  static readonly layer = (options: SessionMaintenanceOptions = {}) =>
    Layer.effect(SessionMaintenance, Effect.gen(function*() {
      const store = yield* SessionStore
      const sessions = yield* Sessions
      const config = yield* AppConfig
      const firstPassAfter = Duration.fromInputUnsafe(options.firstPassAfter ?? "1 minute")
      const recheckMs = Duration.toMillis(Duration.fromInputUnsafe(options.recheckEvery ?? "30 minutes"))
      const lock = yield* Semaphore.make(1)
      let last: LastPass | undefined
      /** Per agent: when the age or archive rules next have work. */
      const boundaries = new Map<string, number>()
      const archiveBoundaries = new Map<string, number>()
      /** Per agent: the sessions its last pass left. */
      const leftAfterPass = new Map<string, number>()

      const current = config.get.pipe(Effect.map((c) => ({ policy: resolvePolicy(c.session.maintenance), mainKey: c.session.mainKey })))

      /** `full`: the files too (archives, disk budget); a pass for the cap alone looks at the index only. */
      const passAgent = Effect.fnUntraced(function*(agentId: string, run: RunOptions, policy: MaintenancePolicy, mainKey: string, full: boolean) {
        const now = yield* Clock.currentTimeMillis
        const apply = options.readOnly !== true && run.dryRun !== true && (policy.mode === "enforce" || run.enforce === true)
        const rows = yield* sessions.list(agentId)
        const planOptions = { now, mainKey, activeKey: run.activeKey }
        const removals: Array<Removal> = [...planRemovals(rows, policy, planOptions)]
        let files = full || run.fixMissing === true ? yield* store.storedFiles(agentId) : []
        if (run.fixMissing === true) {
          const transcripts = new Set(files.filter((file) => file.kind === "transcript").map((file) => file.name))
          const planned = new Set(removals.map((removal) => removal.key))
          for (const row of rows) {
            if (row.live || planned.has(row.key) || row.key === run.activeKey || row.key === SessionKey.mainKey(agentId, mainKey)) continue
            if (!transcripts.has(`${row.entry.sessionId}.jsonl`)) removals.push({ key: row.key, entry: row.entry, reason: "missing", transcript: "erase" })
          }
        }
        const done: Array<Removal> = []
        const retire = (removal: Removal) =>
          Effect.gen(function*() {
            if (!apply) {
              done.push(removal)
              return true
            }
            const removed = yield* sessions.retireIdle(removal.key, removal.entry, removal.transcript)
            if (removed) done.push(removal)
            return removed
          })
        for (const removal of removals) yield* retire(removal)

        let archivesRemoved = 0
        const removeFile = (file: StoredFile) =>
          Effect.gen(function*() {
            if (apply) yield* store.removeStoredFile(agentId, file)
            archivesRemoved += file.kind === "archive" ? 1 : 0
          })
        const retention = full ? policy.archiveRetentionMs : undefined
        const gone = new Set<string>()
        if (retention !== undefined) {
          for (const file of files) {
            if (file.kind !== "archive" || now - file.at <= retention) continue
            yield* removeFile(file)
            gone.add(file.name)
          }
        }

        let diskBudget: DiskBudgetReport | null = null
        if (full && policy.maxDiskBytes !== undefined) {
          // Measured again when something was removed: an archive made by the removals counts, an erased transcript does not.
          if (apply && (done.length > 0 || gone.size > 0)) files = yield* store.storedFiles(agentId)
          else files = files.filter((file) => !gone.has(file.name))
          const bytesBefore = files.reduce((sum, file) => sum + file.bytes, 0)
          let bytes = bytesBefore
          let removedFiles = 0
          let removedSessions = 0
          if (bytes > policy.maxDiskBytes) {
            const target = policy.highWaterBytes
            const setAside = files.filter((file) => file.kind === "archive" || file.kind === "backup").sort((a, b) => a.at - b.at)
            for (const file of setAside) {
              if (bytes <= target) break
              yield* removeFile(file)
              bytes -= file.bytes
              removedFiles++
            }
            if (bytes > target) {
              const transcriptBytes = new Map(files.filter((file) => file.kind === "transcript").map((file) => [file.name, file.bytes]))
              const removedKeys = new Set(done.map((removal) => removal.key))
              const candidates = [...rows].filter((row) => !removedKeys.has(row.key)).sort((a, b) => a.entry.updatedAt - b.entry.updatedAt)
              for (const row of candidates) {
                if (bytes <= target) break
                if (removable(row, policy, planOptions) === undefined) continue
                // The space is wanted back, so the transcript is erased rather than archived.
                if (yield* retire({ key: row.key, entry: row.entry, reason: "disk", transcript: "erase" })) {
                  bytes -= transcriptBytes.get(`${row.entry.sessionId}.jsonl`) ?? 0
                  removedSessions++
                }
              }
            }
          }
          diskBudget = {
            maxBytes: policy.maxDiskBytes,
            highWaterBytes: policy.highWaterBytes,
            bytesBefore,
            bytesAfter: bytes,
            removedFiles,
            removedSessions,
            overBudget: bytes > policy.maxDiskBytes
          }
        }
        if (apply && done.length > 0) yield* store.flush

        const count = (reason: RemovalReason) => done.filter((removal) => removal.reason === reason).length
        const summary: CleanupSummary = {
          agentId,
          storePath: yield* store.indexLocation(agentId),
          mode: policy.mode,
          dryRun: !apply,
          beforeCount: rows.length,
          afterCount: rows.length - done.length,
          missing: count("missing"),
          pruned: count("age"),
          capped: count("cap"),
          archivesRemoved,
          diskBudget,
          wouldMutate: done.length > 0 || archivesRemoved > 0 || (diskBudget?.removedFiles ?? 0) > 0,
          actions: done.map((removal) => ({ key: removal.key, reason: removal.reason, transcript: removal.transcript }))
        }

        // The next time the age or archive rules have work, from what is left.
        // Not applied (warn mode, a dry run): what was reported is reported again at the next full pass, not at once.
        const reported = new Set(done.map((removal) => removal.key))
        const left = rows.filter((row) => !reported.has(row.key))
        const ageAt = nextAgeBoundary(left, policy, planOptions)
        const archiveAt = retention === undefined
          ? (full ? undefined : archiveBoundaries.get(agentId))
          : files.filter((file) => file.kind === "archive" && !gone.has(file.name)).reduce<number | undefined>(
            (soonest, file) => Math.min(soonest ?? Infinity, file.at + retention + 1),
            undefined
          )
        if (apply) leftAfterPass.set(agentId, summary.afterCount)
        if (archiveAt === undefined) archiveBoundaries.delete(agentId)
        else archiveBoundaries.set(agentId, archiveAt)
        const next = Math.min(ageAt ?? Infinity, archiveAt ?? Infinity)
        if (Number.isFinite(next)) boundaries.set(agentId, next)
        else boundaries.delete(agentId)
        return summary
      })

      const pass = (trigger: LastPass["trigger"], run: RunOptions, full = true) =>
        lock.withPermits(1)(Effect.gen(function*() {
          const { mainKey, policy } = yield* current
          const agents = run.agentId !== undefined ? [run.agentId] : yield* store.storedAgents
          const summaries: Array<CleanupSummary> = []
          for (const agentId of agents) summaries.push(yield* passAgent(agentId, run, policy, mainKey, full))
          last = { at: yield* Clock.currentTimeMillis, trigger, summaries }
          yield* report(trigger, summaries)
          return summaries
        }))

      const report = (trigger: LastPass["trigger"], summaries: ReadonlyArray<CleanupSummary>) =>
        Effect.forEach(summaries, (summary) => {
          if (!summary.wouldMutate && summary.diskBudget?.overBudget !== true) return Effect.void
          const parts = [
            summary.pruned > 0 ? `${summary.pruned} idle past pruneAfter` : "",
            summary.capped > 0 ? `${summary.capped} over maxEntries` : "",
            summary.missing > 0 ? `${summary.missing} without a transcript` : "",
            summary.archivesRemoved > 0 ? `${summary.archivesRemoved} archived transcript(s)` : "",
            (summary.diskBudget?.removedSessions ?? 0) > 0 ? `${summary.diskBudget?.removedSessions} session(s) for the disk budget` : ""
          ].filter((part) => part !== "")
          const disk = summary.diskBudget === null
            ? ""
            : `; sessions use ${formatBytes(summary.diskBudget.bytesAfter)} of ${formatBytes(summary.diskBudget.maxBytes)}${summary.diskBudget.overBudget ? " (over budget: the rest is kept)" : ""}`
          if (trigger === "request") return Effect.void
          return summary.dryRun
            ? Effect.logWarning(`session maintenance (warn mode) would remove for agent ${summary.agentId}: ${parts.join(", ") || "nothing"}${disk}; set session.maintenance.mode to enforce to apply`)
            : Effect.logInfo(`session maintenance removed for agent ${summary.agentId}: ${parts.join(", ") || "nothing"}${disk}`)
        }, { discard: true })

      /** An index past its cap by more than a little (OpenClaw's high-water buffer: passes come in batches, not per session). */
      const overCap = Effect.gen(function*() {
        const { policy } = yield* current
        const slack = policy.maxEntries >= 100 ? Math.ceil(policy.maxEntries / 20) : 0
        // Above what the last pass left, too: sessions the rules keep can hold an index over its cap.
        return (yield* store.entryCounts).some(([agentId, entries]) => entries > Math.max(policy.maxEntries, leftAfterPass.get(agentId) ?? 0) + slack)
      })

      /** True when the pass ran; a failure is logged, and the next timed pass waits a minute. */
      const automatic = (trigger: LastPass["trigger"]) =>
        pass(trigger, {}, trigger !== "cap").pipe(
          Effect.as(true),
          Effect.catchCause((cause) => Effect.logError("session maintenance failed; it tries again in a minute", cause).pipe(Effect.as(false)))
        )

      // --- the schedule ----------------------------------------------------
      const schedule = Effect.gen(function*() {
        const wake = yield* Queue.sliding<"written" | "config">(1)
        yield* store.indexWritten.pipe(
          Effect.andThen(Queue.offer(wake, "written")),
          Effect.forever,
          Effect.forkScoped
        )
        yield* config.watch((c) => c.session.maintenance).pipe(
          Stream.drop(1),
          Stream.runForEach(() => Queue.offer(wake, "config")),
          Effect.forkScoped
        )
        // The first pass waits a while after the start; an index past its cap is dealt with at once all the same.
        const startedAt = yield* Clock.currentTimeMillis
        let firstAt: number | undefined = startedAt + Duration.toMillis(firstPassAfter)
        let lastFull = startedAt
        // Timed passes keep a gap (a boundary a pass could not clear must not make it run back to back).
        let notBefore = 0
        let written = false
        while (true) {
          const now = yield* Clock.currentTimeMillis
          const boundary = Math.min(...boundaries.values())
          const recheckAt = written ? lastFull + recheckMs : Infinity
          const dueAt = Math.max(notBefore, Math.min(firstAt ?? Infinity, boundary, recheckAt))
          const signal = Number.isFinite(dueAt)
            ? yield* Queue.take(wake).pipe(Effect.timeoutOption(Math.max(0, dueAt - now)))
            : Option.some(yield* Queue.take(wake))
          if (Option.isSome(signal) && signal.value === "written") {
            written = true
            if (yield* overCap) yield* automatic("cap")
            continue
          }
          const at = yield* Clock.currentTimeMillis
          const trigger = Option.isSome(signal) ? "config" : firstAt !== undefined && at >= firstAt ? "start" : at >= boundary ? "boundary" : "recheck"
          const ran = yield* automatic(trigger)
          notBefore = at + (ran ? MIN_GAP_MS : RETRY_AFTER_MS)
          if (!ran) continue
          firstAt = undefined
          lastFull = at
          written = false
        }
      })
      if (options.readOnly !== true && options.automatic !== false) yield* Effect.forkScoped(schedule)

      return SessionMaintenance.of({
        run: (run) => pass("request", run),
        last: Effect.sync(() => last)
      })
    }))
}
