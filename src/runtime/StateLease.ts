/**
 * One process writes a state directory at a time. The gateway holds a lease
 * file naming its pid; a lease whose process is gone is stale and taken over,
 * so a crash never leaves the directory locked. Session transcripts need no
 * locks of their own: inside the process each has a single writer.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Effect, Schema } from "effect"

export const Lease = Schema.Struct({
  pid: Schema.Number,
  port: Schema.Number,
  host: Schema.String,
  startedAt: Schema.String
})
export type Lease = typeof Lease.Type

export class StateDirBusy extends Schema.TaggedError<StateDirBusy>()("StateDirBusy", {
  home: Schema.String,
  pid: Schema.Number,
  message: Schema.String
}) {}

const decodeLease = Schema.decodeUnknownOption(Schema.fromJsonString(Lease))
const leaseFile = (home: string) => path.join(home, "gateway.lease.json")

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return typeof error === "object" && error !== null && "code" in error && error.code === "EPERM"
  }
}

/** The live lease on `home`, if another process holds one. */
export const current = (home: string): Effect.Effect<Lease | undefined> =>
  Effect.tryPromise(() => fs.readFile(leaseFile(home), "utf8")).pipe(
    Effect.map((text) => {
      const lease = decodeLease(text)
      if (lease._tag === "None") return undefined
      return lease.value.pid !== process.pid && isAlive(lease.value.pid) ? lease.value : undefined
    }),
    Effect.catch(() => Effect.succeed(undefined))
  )

/** Fails when a live gateway owns `home`; commands that write sessions call this first. */
export const ensureFree = (home: string) =>
  current(home).pipe(Effect.flatMap((lease) =>
    lease === undefined ? Effect.void : Effect.fail(new StateDirBusy({
      home,
      pid: lease.pid,
      message: `a BeamClaw gateway (pid ${lease.pid}, http://${lease.host}:${lease.port}) is running on ${home}; stop it first, or point BEAMCLAW_HOME at another state directory`
    }))
  ))

/** Takes the lease for the lifetime of the scope. */
export const acquire = (home: string, address: { readonly host: string; readonly port: number }) =>
  Effect.acquireRelease(
    Effect.gen(function*() {
      yield* ensureFree(home)
      const lease: Lease = { pid: process.pid, port: address.port, host: address.host, startedAt: new Date().toISOString() }
      yield* Effect.tryPromise(async () => {
        await fs.mkdir(home, { recursive: true, mode: 0o700 })
        await fs.writeFile(leaseFile(home), JSON.stringify(lease), { mode: 0o600 })
      }).pipe(Effect.orDie)
      return lease
    }),
    () => Effect.tryPromise(() => fs.rm(leaseFile(home), { force: true })).pipe(Effect.ignore)
  )
