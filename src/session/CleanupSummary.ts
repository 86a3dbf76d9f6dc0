/**
 * What a session maintenance pass reports (session/SessionMaintenance.ts), as
 * schemas: the typed RPC sends it, so this module holds schemas only.
 */
import { Schema } from "effect"

export const RemovalReason = Schema.Literals(["age", "cap", "disk", "missing"])
export type RemovalReason = typeof RemovalReason.Type

export const DiskBudgetReport = Schema.Struct({
  maxBytes: Schema.Number,
  highWaterBytes: Schema.Number,
  bytesBefore: Schema.Number,
  bytesAfter: Schema.Number,
  removedFiles: Schema.Number,
  removedSessions: Schema.Number,
  /** Still above the budget: what is left is kept (conversations, live sessions) or could not be removed. */
  overBudget: Schema.Boolean
})
export type DiskBudgetReport = typeof DiskBudgetReport.Type

/** One agent's pass, in the shape of OpenClaw's cleanup summary plus what BeamClaw reports besides. */
export const CleanupSummary = Schema.Struct({
  agentId: Schema.String,
  storePath: Schema.String,
  mode: Schema.Literals(["enforce", "warn"]),
  dryRun: Schema.Boolean,
  beforeCount: Schema.Number,
  afterCount: Schema.Number,
  missing: Schema.Number,
  pruned: Schema.Number,
  capped: Schema.Number,
  archivesRemoved: Schema.Number,
  diskBudget: Schema.NullOr(DiskBudgetReport),
  wouldMutate: Schema.Boolean,
  /** What was (or, not applied, would be) removed, session by session. */
  actions: Schema.Array(Schema.Struct({
    key: Schema.String,
    reason: RemovalReason,
    transcript: Schema.Literals(["archive", "erase"])
  }))
})
export type CleanupSummary = typeof CleanupSummary.Type
