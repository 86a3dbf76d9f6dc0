/**
 * What a session maintenance pass reports (session/SessionMaintenance.ts), as
 * schemas: the typed RPC sends it, so this module holds schemas only.
 */
import { Schema } from "effect"

export const RemovalReason = Schema.Literals(["age", "cap", "disk", "missing"])
export type RemovalReason = typeof RemovalReason.Type

/** OpenClaw's disk-budget report: bytes of the sessions directory before and after, what went. */
export const DiskBudgetReport = Schema.Struct({
  totalBytesBefore: Schema.Number,
  totalBytesAfter: Schema.Number,
  /** Archived transcripts and repair backups erased. */
  removedFiles: Schema.Number,
  /** Sessions erased for space (disposable ones only). */
  removedEntries: Schema.Number,
  freedBytes: Schema.Number,
  maxBytes: Schema.Number,
  highWaterBytes: Schema.Number,
  /** Still above the budget: what is left is kept (conversations, live sessions) or could not be removed. */
  overBudget: Schema.Boolean
})

/** OpenClaw's report of transcript artifacts pruned by age: here, archives past `resetArchiveRetention`. */
export const ArtifactsReport = Schema.Struct({
  scannedFiles: Schema.Number,
  removedFiles: Schema.Number,
  freedBytes: Schema.Number,
  olderThanMs: Schema.NullOr(Schema.Number)
})
export type DiskBudgetReport = typeof DiskBudgetReport.Type

/**
 * One agent's pass, in the shape of OpenClaw's cleanup summary (what its
 * `openclaw sessions cleanup` prints from a gateway) plus what BeamClaw
 * reports besides (`archivesRemoved`, `actions`). `dmScopeRetired` and
 * `modelRunPruned` are always 0: BeamClaw keeps no such rows.
 */
export const CleanupSummary = Schema.Struct({
  agentId: Schema.String,
  storePath: Schema.String,
  mode: Schema.Literals(["enforce", "warn"]),
  dryRun: Schema.Boolean,
  beforeCount: Schema.Number,
  afterCount: Schema.Number,
  missing: Schema.Number,
  dmScopeRetired: Schema.Number,
  modelRunPruned: Schema.Number,
  pruned: Schema.Number,
  capped: Schema.Number,
  unreferencedArtifacts: ArtifactsReport,
  archivesRemoved: Schema.Number,
  diskBudget: Schema.NullOr(DiskBudgetReport),
  wouldMutate: Schema.Boolean,
  /** Present when the pass was applied: the sessions left, as OpenClaw's `appliedCount`. */
  applied: Schema.optionalKey(Schema.Literal(true)),
  appliedCount: Schema.optionalKey(Schema.Number),
  /** What was (or, not applied, would be) removed, session by session. */
  actions: Schema.Array(Schema.Struct({
    key: Schema.String,
    reason: RemovalReason,
    transcript: Schema.Literals(["archive", "erase"])
  }))
})
export type CleanupSummary = typeof CleanupSummary.Type
