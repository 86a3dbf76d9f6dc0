/**
 * Session maintenance, OpenClaw's `session.maintenance`: what the sessions
 * keep on disk stays bounded. Every OpenAI request without `user` makes a
 * session of its own, so without it the index and the sessions directory
 * grow with traffic, forever.
 *
 * Rules, per agent, in order:
 * - age: a session untouched for `pruneAfter` (30 d) is removed;
 * - count: beyond `maxEntries` (5,000) sessions, the oldest disposable ones
 *   are removed, then the oldest durable ones;
 * - archives: transcripts set aside by a reset or delete are erased after
 *   `resetArchiveRetention` (kept by default);
 * - disk: when the sessions directory passes `maxDiskBytes` (10 GiB), the
 *   oldest archives and repair backups go first, then the oldest disposable
 *   sessions, until it is under `highWaterBytes` (80%).
 * Conversations a channel points at (the main session, DMs, groups, channels,
 * threads), live sessions and recently active ones (`preserveRecent`) are
 * never removed, nor is a person's conversation erased for space. A removed
 * session's transcript is archived as `.deleted.<ts>`, as a manual delete;
 * a disposable one's (made for a single request, or by automation) is
 * erased. `mode: warn` only reports.
 *
 * When: a minute after start, then at the next age boundary (in batches),
 * at the next archive boundary and, while sessions are written, every 30
 * minutes, or at once when an index passes its cap; an idle gateway holds
 * one timer, for the next boundary. `sessions.cleanup`, the typed RPC's
 * `CleanupSessions` and `beamclaw sessions cleanup` run a pass on request.
 */
import { Clock, Context, Duration, Effect, Layer, PubSub, Queue, Semaphore, Stream } from "effect"
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
 * How maintenance treats a session: `kept` for conversations a channel
 * points at; `disposable` for sessions made by automation (cron, hooks,
 * sub-agents) or for one request (an OpenAI or OpenResponses request without
 * `user`: `openai:<uuid>`, `openresponses:<uuid>`, as long as it has had one
 * turn; a Responses chain continued with `previous_response_id` is a
 * conversation); `durable` for the rest. A disposable session's transcript is
 * erased when it goes, a durable one's archived.
 */
export type Retention = "kept" | "durable" | "disposable"

export const retentionOf = (key: SessionKey.ParsedSessionKey, entry: Pick<SessionEntry, "turnCount">): Retention => {
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
      return (key.rest.startsWith("openai:") || key.rest.startsWith("openresponses:")) && entry.turnCount <= 1 ? "disposable" : "durable"
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

/** The retention of a session the rules may remove now, else undefined (kept, live, active, recent, or unreadable). */
export const removableAs = (row: SessionRowView, policy: MaintenancePolicy, options: PlanOptions): "durable" | "disposable" | undefined => {
  if (row.live || row.key === options.activeKey) return undefined
  const parsed = SessionKey.parse(row.key, { mainKey: options.mainKey })
  // A key this version cannot read is left alone: it is not maintenance's to judge.
  if (parsed._tag === "Failure") return undefined
  const retention = retentionOf(parsed.success, row.entry)
  if (retention === "kept") return undefined
  if (retention === "durable" && options.now - row.entry.updatedAt < (policy.preserveRecentMs ?? 0)) return undefined
  return retention
}

const transcriptOf = (retention: "durable" | "disposable"): Removal["transcript"] => retention === "disposable" ? "erase" : "archive"

/**
 * The sessions the age and count rules remove: every session older than
 * `pruneAfter`, oldest first; then, while more than `maxEntries` remain, the
 * oldest disposable sessions, then the oldest durable ones (a flood of
 * one-request sessions does not push out a person's conversation while
 * throwaway ones are left). Kept sessions count toward the cap, so an agent
 * with more of them than the cap stays above it.
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
      const retention = removableAs(row, policy, options)
      if (retention === undefined) continue
      removals.push({ key: row.key, entry: row.entry, reason: "age", transcript: transcriptOf(retention) })
      removedKeys.add(row.key)
    }
  }
  let remaining = rows.length - removals.length
  for (const wanted of ["disposable", "durable"] as const) {
    for (const row of oldestFirst) {
      if (remaining <= policy.maxEntries) break
      if (removedKeys.has(row.key) || removableAs(row, policy, options) !== wanted) continue
      removals.push({ key: row.key, entry: row.entry, reason: "cap", transcript: transcriptOf(wanted) })
      removedKeys.add(row.key)
      remaining--
    }
  }
  return removals
}

/**
 * When the age rule next has something to do: the soonest time a session
 * that is not kept passes `pruneAfter` (and `preserveRecent`). A write only
 * moves a session's time later, so this holds until the next pass. A live
 * session past its time is looked at again `liveRecheckMs` on, when it may
 * have been passivated.
 */
export const nextAgeBoundary = (
  rows: ReadonlyArray<SessionRowView>,
  policy: MaintenancePolicy,
  options: PlanOptions & { readonly liveRecheckMs: number }
): number | undefined => {
  const pruneAfter = policy.pruneAfterMs
  if (pruneAfter === undefined) return undefined
  let soonest: number | undefined
  for (const row of rows) {
    const retention = removableAs({ ...row, live: false }, policy, { ...options, now: Infinity })
    if (retention === undefined) continue
    let due = row.entry.updatedAt + Math.max(pruneAfter, retention === "durable" ? policy.preserveRecentMs ?? 0 : 0) + 1
    if (row.live && due <= options.now) due = options.now + options.liveRecheckMs
    if (soonest === undefined || due < soonest) soonest = due
  }
  return soonest
}

/**
 * How far apart passes for the age rule are at least: a hundredth of
 * `pruneAfter`, within 1 s and 1 h. Sessions then expire in batches (with
 * the default 30 days, at most one pass an hour) instead of one pass each.
 */
export const ageGranularityMs = (policy: MaintenancePolicy): number =>
  Math.min(3_600_000, Math.max(1_000, Math.floor((policy.pruneAfterMs ?? 0) / 100)))

const MIN_GAP_MS = 1_000
const TEMPORARY_FILE_AGE_MS = 3_600_000
const RETRY_AFTER_MS = 60_000

export interface RunOptions {
  /** One agent; all agents with stored sessions when absent. */
  readonly agentId?: string | undefined
  /** Apply even in `warn` mode. */
  readonly enforce?: boolean | undefined
  /** Report only. */
  readonly dryRun?: boolean | undefined
  readonly activeKey?: string | undefined
  /** Also remove entries whose transcript is missing (sessions the rules may remove only: never a kept one). */
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

/**
 * What a pass reads: `full` the index and the files (archives, the disk
 * budget); `index` the index only (the age and count rules).
 */
type PassScope = "full" | "index"

export class SessionMaintenance extends Context.Service<SessionMaintenance, {
  /** A pass now (OpenClaw's `sessions.cleanup`), after any pass in progress. */
  readonly run: (options: RunOptions) => Effect.Effect<ReadonlyArray<CleanupSummary>, StoreError>
  /** The last automatic or requested pass. */
  readonly last: Effect.Effect<LastPass | undefined>
  /** Each pass as it ends, automatic or requested (the gateway tells its operators which sessions went). */
  readonly passes: Stream.Stream<LastPass>
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
      const finished = yield* PubSub.sliding<LastPass>(16)
      /** Per agent: when the age rule, and the archive rule, next have work. */
      const ageBoundaries = new Map<string, number>()
      const archiveBoundaries = new Map<string, number>()
      /** Per agent: the sessions its last pass left (what the rules keep can hold an index over its cap). */
      const leftAfterPass = new Map<string, number>()

      const current = config.get.pipe(Effect.map((c) => ({
        policy: resolvePolicy(c.session.maintenance),
        mainKey: c.session.mainKey,
        // A live session is looked at again once it may have been passivated.
        liveRecheckMs: c.session.idle.passivateAfterSeconds * 1000 + 60_000
      })))

      /** `schedules`: an automatic pass, whose result sets when the next ones run (a request's never does). */
      const passAgent = Effect.fnUntraced(function*(
        agentId: string,
        run: RunOptions,
        settings: Effect.Success<typeof current>,
        scope: PassScope,
        schedules: boolean
      ) {
        const { liveRecheckMs, mainKey, policy } = settings
        const full = scope === "full"
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
            if (planned.has(row.key) || transcripts.has(`${row.entry.sessionId}.jsonl`)) continue
            // Only what the rules may remove: a DM or group entry keeps its last route even without a transcript.
            if (removableAs(row, { ...policy, preserveRecentMs: undefined }, planOptions) === undefined) continue
            removals.push({ key: row.key, entry: row.entry, reason: "missing", transcript: "erase" })
          }
        }
        const done: Array<Removal> = []
        const failed: Array<string> = []
        // One session that cannot be removed (a file the process may not touch, a broken entry) is skipped and
        // reported; the pass goes on, so the rest of the index stays bounded.
        const retire = (removal: Removal) =>
          Effect.gen(function*() {
            if (!apply) {
              done.push(removal)
              return true
            }
            const removed = yield* sessions.retireIdle(removal.key, removal.entry, removal.transcript).pipe(
              Effect.catch((error) => Effect.sync(() => failed.push(`${removal.key}: ${error.message}`)).pipe(Effect.as(false)))
            )
            if (removed) done.push(removal)
            return removed
          })
        for (const removal of removals) yield* retire(removal)

        let archivesRemoved = 0
        const removeFile = (file: StoredFile) =>
          Effect.gen(function*() {
            if (apply) {
              const removed = yield* store.removeStoredFile(agentId, file).pipe(
                Effect.as(true),
                Effect.catch((error) => Effect.sync(() => failed.push(`${file.name}: ${error.message}`)).pipe(Effect.as(false)))
              )
              if (!removed) return false
            }
            archivesRemoved += file.kind === "archive" ? 1 : 0
            return true
          })
        const gone = new Set<string>()
        // What an atomic write leaves when the process is killed in the middle (no write takes an hour).
        if (full) {
          for (const file of files) {
            if (file.kind !== "temporary" || now - file.at < TEMPORARY_FILE_AGE_MS) continue
            if (yield* removeFile(file)) gone.add(file.name)
          }
        }
        const retention = policy.archiveRetentionMs
        const artifacts = { scannedFiles: 0, removedFiles: 0, freedBytes: 0, olderThanMs: retention ?? null }
        if (full && retention !== undefined) {
          for (const file of files) {
            if (file.kind !== "archive") continue
            artifacts.scannedFiles++
            if (now - file.at <= retention) continue
            if (!(yield* removeFile(file))) continue
            gone.add(file.name)
            artifacts.removedFiles++
            artifacts.freedBytes += file.bytes
          }
        }

        let diskBudget: DiskBudgetReport | null = null
        if (full && policy.maxDiskBytes !== undefined) {
          // Measured again when something was removed: an archive made by the removals counts, an erased transcript does not.
          if (apply && (done.length > 0 || gone.size > 0)) files = yield* store.storedFiles(agentId)
          else files = files.filter((file) => !gone.has(file.name))
          const totalBytesBefore = files.reduce((sum, file) => sum + file.bytes, 0)
          let bytes = totalBytesBefore
          let removedFiles = 0
          let removedEntries = 0
          if (bytes > policy.maxDiskBytes) {
            const target = policy.highWaterBytes
            const setAside = files.filter((file) => file.kind === "archive" || file.kind === "backup").sort((a, b) => a.at - b.at)
            for (const file of setAside) {
              if (bytes <= target) break
              if (!(yield* removeFile(file))) continue
              gone.add(file.name)
              bytes -= file.bytes
              removedFiles++
            }
            // Then sessions made by automation or for one request, oldest first. A person's conversations are
            // bounded by the age and count rules, never erased for space (as OpenClaw's budget).
            if (bytes > target) {
              const transcriptBytes = new Map(files.filter((file) => file.kind === "transcript").map((file) => [file.name, file.bytes]))
              const removedKeys = new Set(done.map((removal) => removal.key))
              const candidates = [...rows].filter((row) => !removedKeys.has(row.key)).sort((a, b) => a.entry.updatedAt - b.entry.updatedAt)
              for (const row of candidates) {
                if (bytes <= target) break
                if (removableAs(row, policy, planOptions) !== "disposable") continue
                if (yield* retire({ key: row.key, entry: row.entry, reason: "disk", transcript: "erase" })) {
                  bytes -= transcriptBytes.get(`${row.entry.sessionId}.jsonl`) ?? 0
                  removedEntries++
                }
              }
            }
          }
          diskBudget = {
            maxBytes: policy.maxDiskBytes,
            highWaterBytes: policy.highWaterBytes,
            totalBytesBefore,
            totalBytesAfter: bytes,
            removedFiles,
            removedEntries,
            freedBytes: totalBytesBefore - bytes,
            overBudget: bytes > policy.maxDiskBytes
          }
        }
        if (apply && done.length > 0) yield* store.flush
        if (failed.length > 0) {
          yield* Effect.logWarning(`session maintenance skipped ${failed.length} item(s) of agent ${agentId} it could not remove (tried again at the next pass): ${failed.slice(0, 5).join("; ")}${failed.length > 5 ? "; …" : ""}`)
        }

        const count = (reason: RemovalReason) => done.filter((removal) => removal.reason === reason).length
        const summary: CleanupSummary = {
          agentId,
          storePath: yield* store.indexLocation(agentId),
          mode: policy.mode,
          dryRun: !apply,
          beforeCount: rows.length,
          afterCount: rows.length - done.length,
          missing: count("missing"),
          dmScopeRetired: 0,
          modelRunPruned: 0,
          pruned: count("age"),
          capped: count("cap"),
          unreferencedArtifacts: artifacts,
          archivesRemoved,
          diskBudget,
          wouldMutate: done.length > 0 || archivesRemoved > 0 || (diskBudget?.removedFiles ?? 0) > 0,
          ...(apply ? { applied: true, appliedCount: rows.length - done.length } : {}),
          actions: done.map((removal) => ({ key: removal.key, reason: removal.reason, transcript: removal.transcript }))
        }

        if (!schedules) return summary
        // When the rules next have work, from what is left. Not applied (warn mode): what was reported is reported
        // again at the next full pass, not at once. A time already past means something could not be removed
        // (a session that changed meanwhile, a file the process may not touch): it is tried again a minute on.
        const reported = new Set(done.map((removal) => removal.key))
        const left = rows.filter((row) => !reported.has(row.key))
        const notPast = (at: number | undefined) => at === undefined || at > now ? at : now + RETRY_AFTER_MS
        leftAfterPass.set(agentId, apply ? summary.afterCount : summary.beforeCount)
        const ageAt = notPast(nextAgeBoundary(left, policy, { ...planOptions, liveRecheckMs }))
        if (ageAt === undefined) ageBoundaries.delete(agentId)
        else ageBoundaries.set(agentId, ageAt)
        if (full) {
          const archiveAt = retention === undefined
            ? undefined
            : notPast(files.filter((file) => file.kind === "archive" && !gone.has(file.name)).reduce<number | undefined>(
              (soonest, file) => Math.min(soonest ?? Infinity, file.at + retention + 1),
              undefined
            ))
          if (archiveAt === undefined) archiveBoundaries.delete(agentId)
          else archiveBoundaries.set(agentId, archiveAt)
        }
        return summary
      })

      const pass = (trigger: LastPass["trigger"], run: RunOptions, scope: PassScope = "full") =>
        lock.withPermits(1)(Effect.gen(function*() {
          const settings = yield* current
          const schedules = trigger !== "request"
          if (run.agentId !== undefined) {
            const summary = yield* passAgent(run.agentId, run, settings, scope, schedules)
            return yield* finish(trigger, scope, [summary])
          }
          const agents = yield* store.storedAgents
          if (schedules) {
            // Agents whose sessions are gone leave the schedule with them.
            for (const map of [ageBoundaries, archiveBoundaries, leftAfterPass]) {
              for (const agentId of map.keys()) if (!agents.includes(agentId)) map.delete(agentId)
            }
          }
          const summaries: Array<CleanupSummary> = []
          for (const agentId of agents) {
            // One agent's store that cannot be read (a directory the process may not enter) does not stop the others.
            const summary = yield* passAgent(agentId, run, settings, scope, schedules).pipe(
              Effect.catch((error) => Effect.logWarning(`session maintenance skipped agent ${agentId}: ${error.message}`).pipe(Effect.as(undefined)))
            )
            if (summary !== undefined) summaries.push(summary)
          }
          return yield* finish(trigger, scope, summaries)
        }))

      const finish = (trigger: LastPass["trigger"], scope: PassScope, summaries: ReadonlyArray<CleanupSummary>) =>
        Effect.gen(function*() {
          last = { at: yield* Clock.currentTimeMillis, trigger, summaries }
          yield* PubSub.publish(finished, last)
          // Warn mode reports at its full passes; a pass that applied something always says what.
          if (trigger !== "request") yield* report(summaries.filter((summary) => !summary.dryRun || scope === "full"))
          return summaries
        })

      const report = (summaries: ReadonlyArray<CleanupSummary>) =>
        Effect.forEach(summaries, (summary) => {
          if (!summary.wouldMutate && summary.diskBudget?.overBudget !== true) return Effect.void
          const parts = [
            summary.pruned > 0 ? `${summary.pruned} idle past pruneAfter` : "",
            summary.capped > 0 ? `${summary.capped} over maxEntries` : "",
            summary.missing > 0 ? `${summary.missing} without a transcript` : "",
            summary.archivesRemoved > 0 ? `${summary.archivesRemoved} archived transcript(s)` : "",
            (summary.diskBudget?.removedEntries ?? 0) > 0 ? `${summary.diskBudget?.removedEntries} session(s) for the disk budget` : ""
          ].filter((part) => part !== "")
          const disk = summary.diskBudget === null
            ? ""
            : `; sessions use ${formatBytes(summary.diskBudget.totalBytesAfter)} of ${formatBytes(summary.diskBudget.maxBytes)}${summary.diskBudget.overBudget ? " (over budget: the rest is kept)" : ""}`
          return summary.dryRun
            ? Effect.logWarning(`session maintenance (warn mode) would remove for agent ${summary.agentId}: ${parts.join(", ") || "nothing"}${disk}; set session.maintenance.mode to enforce to apply`)
            : Effect.logInfo(`session maintenance removed for agent ${summary.agentId}: ${parts.join(", ") || "nothing"}${disk}`)
        }, { discard: true })

      /**
       * An index past its cap by more than a little (OpenClaw's high-water
       * buffer: passes come in batches, not per session) and past what the
       * last pass left. Only when enforcing: warn mode reports at full passes.
       */
      const overCap = Effect.gen(function*() {
        const { policy } = yield* current
        if (policy.mode !== "enforce") return false
        const slack = policy.maxEntries >= 100 ? Math.ceil(policy.maxEntries / 20) : 0
        return (yield* store.entryCounts).some(([agentId, entries]) => entries > Math.max(policy.maxEntries, leftAfterPass.get(agentId) ?? 0) + slack)
      })

      /** True when the pass ran; a failure is logged, and the next timed pass waits a minute. */
      const automatic = (trigger: LastPass["trigger"], scope: PassScope) =>
        pass(trigger, {}, scope).pipe(
          Effect.as(true),
          Effect.catchCause((cause) => Effect.logError("session maintenance failed; it tries again in a minute", cause).pipe(Effect.as(false)))
        )

      // --- the schedule ----------------------------------------------------
      const schedule = Effect.gen(function*() {
        const wake = yield* Queue.sliding<void>(1)
        // Flags, not the queue's item: a config change and an index write that come together are both seen.
        let written = false
        let configChanged = false
        yield* store.indexWritten.pipe(
          Effect.andThen(Effect.sync(() => {
            written = true
          })),
          Effect.andThen(Queue.offer(wake, undefined)),
          Effect.forever,
          Effect.forkScoped
        )
        yield* config.watch((c) => c.session.maintenance).pipe(
          Stream.drop(1),
          Stream.runForEach(() => Effect.sync(() => {
            configChanged = true
          }).pipe(Effect.andThen(Queue.offer(wake, undefined)))),
          Effect.forkScoped
        )
        // The first pass waits a while after the start; an index past its cap is dealt with at once all the same.
        const startedAt = yield* Clock.currentTimeMillis
        let firstAt: number | undefined = startedAt + Duration.toMillis(firstPassAfter)
        let lastFull = startedAt
        let lastAgePass = 0
        // Passes keep a gap, a minute after a failed one: nothing can make them run back to back.
        let notBefore = 0
        // Written since the last full pass: the 30-minute recheck is armed.
        let dirty = false
        // An index was written and its count is still to be looked at (at once, or once the gap is over).
        let capCheck = false
        while (true) {
          const now = yield* Clock.currentTimeMillis
          if (written) {
            written = false
            dirty = true
            capCheck = true
          }
          if (capCheck && now >= notBefore) {
            capCheck = false
            if ((yield* overCap) && !(yield* automatic("cap", "index"))) notBefore = now + RETRY_AFTER_MS
            continue
          }
          const { policy } = yield* current
          const ageAt = Math.max(Math.min(...ageBoundaries.values()), lastAgePass + ageGranularityMs(policy))
          const archiveAt = Math.min(...archiveBoundaries.values())
          const recheckAt = dirty ? lastFull + recheckMs : Infinity
          const fullAt = Math.min(configChanged ? now : Infinity, firstAt ?? Infinity, archiveAt, recheckAt)
          const dueAt = Math.max(notBefore, Math.min(fullAt, ageAt, capCheck ? notBefore : Infinity))
          if (dueAt > now) {
            if (Number.isFinite(dueAt)) yield* Queue.take(wake).pipe(Effect.timeoutOption(dueAt - now))
            else yield* Queue.take(wake)
            continue
          }
          const scope: PassScope = fullAt <= now ? "full" : "index"
          const trigger = configChanged ? "config" : firstAt !== undefined && now >= firstAt ? "start" : scope === "full" && recheckAt <= now ? "recheck" : "boundary"
          // Cleared before the pass: a change made while it runs is seen after it.
          const wasConfig = configChanged
          if (scope === "full") configChanged = false
          const ran = yield* automatic(trigger, scope)
          notBefore = now + (ran ? MIN_GAP_MS : RETRY_AFTER_MS)
          if (!ran) {
            if (wasConfig) configChanged = true
            continue
          }
          lastAgePass = now
          if (scope === "full") {
            firstAt = undefined
            lastFull = now
            dirty = false
          }
        }
      })
      if (options.readOnly !== true && options.automatic !== false) yield* Effect.forkScoped(schedule)

      return SessionMaintenance.of({
        run: (run) => pass("request", run),
        last: Effect.sync(() => last),
        passes: Stream.fromPubSub(finished)
      })
    }))
}
