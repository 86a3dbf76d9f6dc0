/**
 * Investigation aid for bench/sessions.ts: the heap cost of each structure a
 * live or passivated session holds, built in isolation N times and measured
 * after full GCs. The parked-fiber rows are the actor shapes Sessions.ts used
 * before (a supervisor fiber in a FiberSet, an incarnation parked on its
 * mailbox, with or without `Effect.timeoutOption`); an idle live actor now is
 * only its handle (a mailbox array and the session's state), with a fiber
 * only while it has mail. The state and index entry are decoded from a
 * transcript and index entry a real turn wrote.
 *   node --expose-gc bench/actor-cost.ts [count]
 */
import { Context, Effect, FiberSet, Option, Queue } from "effect"
import { table } from "./common.ts"

const gcNow: () => void = typeof globalThis.gc === "function" ? globalThis.gc : () => {
  throw new Error("run with --expose-gc")
}

const heapUsed = async (): Promise<number> => {
  for (let i = 0; i < 4; i++) {
    gcNow()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return process.memoryUsage().heapUsed
}

class Dummy extends Context.Service<Dummy, { readonly n: number }>()("bench/Dummy") {}

// What one real turn leaves: the transcript lines and the index entry (see bench/RESULTS.md).
const userLine = (i: number) => `{"type":"message","id":"${(0x10000000 + i).toString(16)}","parentId":null,"timestamp":"2026-11-25T15:33:54.601Z","message":{"role":"user","content":"hello agent:main:bench:${i}","timestamp":1795620834601}}`
const assistantLine = (i: number) => `{"type":"message","id":"${(0x20000000 + i).toString(16)}","parentId":"${(0x10000000 + i).toString(16)}","timestamp":"2026-11-25T15:33:54.788Z","message":{"role":"assistant","content":[{"type":"text","text":"echo: hello agent:main:bench:${i}"}],"provider":"anthropic","model":"claude-sonnet-5-5","usage":{"input":1752,"output":8,"cacheRead":0,"cacheWrite":0,"totalTokens":1760},"stopReason":"stop","timestamp":1795620834788}}`
const indexEntry = (i: number) => JSON.parse(`{"sessionId":"${crypto.randomUUID()}","agentId":"main","updatedAt":${1795620834860 + i},"sessionStartedAt":1795620834591,"inputTokens":1752,"outputTokens":8,"cacheRead":0,"cacheWrite":0,"totalTokens":1760,"contextTokens":1760,"compactionCount":0,"turnCount":1,"model":"claude-sonnet-5-5","modelProvider":"anthropic","abortedLastRun":false}`)

export interface Cost {
  readonly structure: string
  readonly bytesPerItem: number
}

const measureCost = async (count: number, label: string, build: (count: number) => Promise<() => Promise<void>>): Promise<Cost> => {
  const before = await heapUsed()
  const release = await build(count)
  const after = await heapUsed()
  await release()
  return { structure: label, bytesPerItem: (after - before) / count }
}

const effectHeld = (program: (count: number) => Effect.Effect<void, never, import("effect").Scope.Scope>) => async (count: number) => {
  let release: () => void = () => {}
  const done = new Promise<void>((resolve) => { release = resolve })
  let ready: () => void = () => {}
  const built = new Promise<void>((resolve) => { ready = resolve })
  const running = Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    yield* program(count)
    yield* Effect.sync(ready)
    yield* Effect.promise(() => done)
  })))
  await built
  return async () => {
    release()
    await running
  }
}

export const runActorCost = async (count = 10_000): Promise<ReadonlyArray<Cost>> => {
  const held: Array<unknown> = []
  const plain = (make: (i: number) => unknown) => async (n: number) => {
    for (let i = 0; i < n; i++) held.push(make(i))
    return async () => { held.length = 0 }
  }
  const parked = (withTimeout: boolean, nested: boolean) =>
    effectHeld((n) => Effect.gen(function*() {
      const fibers = yield* FiberSet.make()
      const context = Context.make(Dummy, { n: 1 })
      for (let i = 0; i < n; i++) {
        const mailbox = yield* Queue.unbounded<number>()
        const take = withTimeout ? Queue.take(mailbox).pipe(Effect.timeoutOption(86_400_000)) : Queue.take(mailbox).pipe(Effect.map(Option.some))
        const incarnation = Effect.gen(function*() {
          while (true) {
            const next = yield* take
            if (Option.isNone(next)) return
          }
        })
        const fiber = nested
          ? Effect.gen(function*() {
            while (true) {
              const exit = yield* Effect.exit(incarnation)
              if (exit._tag === "Success") return
            }
          }).pipe(Effect.provideContext(context))
          : incarnation
        yield* FiberSet.run(fibers, fiber)
      }
      yield* Effect.yieldNow
    }))
  return [
    await measureCost(count, "Queue.unbounded mailbox (idle)", effectHeld((n) => Effect.gen(function*() {
      const queues: Array<unknown> = []
      for (let i = 0; i < n; i++) queues.push(yield* Queue.unbounded<number>())
      held.push(queues)
    }))),
    await measureCost(count, "fiber in FiberSet parked on Queue.take (incl. mailbox)", parked(false, false)),
    await measureCost(count, "same, with Effect.timeoutOption (incl. mailbox)", parked(true, false)),
    await measureCost(count, "actor shape: supervisor + incarnation + timeoutOption (incl. mailbox)", parked(true, true)),
    await measureCost(count, "idle actor handle now (Sessions.ts ActorHandle, no fiber; state not included)", plain((i) => ({
      key: { key: `agent:main:bench:${i}` }, mailbox: [], current: undefined, lastActive: Date.now(), state: undefined, serving: false, crashes: undefined
    }))),
    await measureCost(count, "session state: 2 transcript entries of one turn (JSON.parse)", plain((i) => ({ entries: [JSON.parse(userLine(i)), JSON.parse(assistantLine(i))], headerWritten: true }))),
    await measureCost(count, "index entry (JSON.parse) + Map slot + key string", (() => {
      const map = new Map<string, unknown>()
      return async (n: number) => {
        for (let i = 0; i < n; i++) map.set(`agent:main:bench:${i}`, indexEntry(i))
        return async () => { map.clear() }
      }
    })())
  ]
}

if (import.meta.main) {
  const count = Number(process.argv[2] ?? 10_000)
  const costs = await runActorCost(count)
  console.log(`heap bytes per item, ${count} items each, after full GCs\n`)
  console.log(table(["structure", "bytes/item"], costs.map((c) => [c.structure, c.bytesPerItem.toFixed(0)])))
}
