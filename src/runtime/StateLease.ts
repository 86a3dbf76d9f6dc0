/**
 * One process writes a state directory at a time: the gateway, or a CLI
 * command that runs turns itself. The holder creates a lease file naming its
 * pid, exclusively; a lease whose process is gone is stale and taken over, so
 * a crash never leaves the directory locked. Session transcripts need no
 * locks of their own: inside the process each has a single writer.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Effect, Schema } from "effect"
import { isErrno } from "../platform/Errno.ts"

export const Lease = Schema.Struct({
  pid: Schema.Number,
  /** `gateway`, or the CLI command holding it. */
  holder: Schema.String,
  port: Schema.optionalKey(Schema.Number),
  host: Schema.optionalKey(Schema.String),
  startedAt: Schema.String
})
export type Lease = typeof Lease.Type

export class StateDirBusy extends Schema.TaggedError<StateDirBusy>()("StateDirBusy", {
  home: Schema.String,
  pid: Schema.Number,
  message: Schema.String
}) {}

export class LeaseError extends Schema.TaggedError<LeaseError>()("LeaseError", {
  home: Schema.String,
  message: Schema.String
}) {}

const decodeLease = Schema.decodeUnknownOption(Schema.fromJsonString(Lease))
export const leaseFile = (home: string) => path.join(home, "gateway.lease.json")

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return isErrno(error, "EPERM")
  }
}

/** The lease on `home` held by another live process, if any. */
export const current = (home: string): Effect.Effect<Lease | undefined> =>
  Effect.tryPromise(() => fs.readFile(leaseFile(home), "utf8")).pipe(
    Effect.map((text) => {
      const lease = decodeLease(text)
      if (lease._tag === "None") return undefined
      return lease.value.pid !== process.pid && isAlive(lease.value.pid) ? lease.value : undefined
    }),
    Effect.catch(() => Effect.succeed(undefined))
  )

const busy = (home: string, lease: Lease) =>
  new StateDirBusy({
    home,
    pid: lease.pid,
    message: lease.holder === "gateway"
      ? `a BeamClaw gateway (pid ${lease.pid}, http://${lease.host ?? "?"}:${lease.port ?? "?"}) is running on ${home}; stop it first, or point BEAMCLAW_HOME at another state directory`
      : `another beamclaw command (\`${lease.holder}\`, pid ${lease.pid}) is using ${home}; wait for it to finish, or point BEAMCLAW_HOME at another state directory`
  })

const write = (home: string, lease: Lease, flag: "wx" | "w") =>
  Effect.tryPromise({
    try: async () => {
      await fs.mkdir(home, { recursive: true, mode: 0o700 })
      await fs.writeFile(leaseFile(home), JSON.stringify(lease), { mode: 0o600, flag })
    },
    catch: (error) => isErrno(error, "EEXIST") ? "exists" as const : new LeaseError({ home, message: `cannot write ${leaseFile(home)}: ${error instanceof Error ? error.message : String(error)}` })
  })

/** Creates the lease exclusively; a stale one is removed and the creation retried. */
const take = (home: string, lease: Lease): Effect.Effect<void, StateDirBusy | LeaseError> =>
  write(home, lease, "wx").pipe(
    Effect.catch((failure) => {
      if (failure !== "exists") return Effect.fail(failure)
      return current(home).pipe(Effect.flatMap((holder) => {
        if (holder !== undefined) return Effect.fail(busy(home, holder))
        return Effect.tryPromise(() => fs.rm(leaseFile(home), { force: true })).pipe(
          Effect.ignore,
          Effect.andThen(write(home, lease, "wx")),
          Effect.catch((again) => again === "exists" ? current(home).pipe(Effect.flatMap((h) => Effect.fail(h === undefined ? new LeaseError({ home, message: "the lease changed hands while it was being taken; try again" }) : busy(home, h)))) : Effect.fail(again))
        )
      }))
    })
  )

/** Holds the lease for the lifetime of the scope. */
export const acquire = (home: string, holder: { readonly name: string; readonly host?: string | undefined; readonly port?: number | undefined }) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      const lease: Lease = {
        pid: process.pid,
        holder: holder.name,
        ...(holder.host === undefined ? {} : { host: holder.host }),
        ...(holder.port === undefined ? {} : { port: holder.port }),
        startedAt: new Date().toISOString()
      }
      yield* take(home, lease)
      return lease
    }),
    () => Effect.tryPromise(() => fs.rm(leaseFile(home), { force: true })).pipe(Effect.ignore)
  )

/** Rewrites the held lease, e.g. when the gateway moves to another port. */
export const update = (home: string, lease: Lease) =>
  write(home, lease, "w").pipe(Effect.catch(() => Effect.void))
