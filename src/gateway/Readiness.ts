/**
 * Readiness as a set of named components, each up or down with a reason.
 * Subsystems report themselves; /ready answers 200 only when all are up.
 */
import { Context, Effect, Layer, Ref } from "effect"

export interface ReadinessReport {
  readonly ready: boolean
  readonly failing: ReadonlyArray<{ readonly component: string; readonly reason: string }>
  readonly uptimeMs: number
}

export class Readiness extends Context.Service<Readiness, {
  readonly set: (component: string, state: { readonly up: true } | { readonly up: false; readonly reason: string }) => Effect.Effect<void>
  readonly report: Effect.Effect<ReadinessReport>
}>()("beamclaw/gateway/Readiness") {
  static readonly layer = Layer.effect(Readiness, Effect.gen(function*() {
    const startedAt = Date.now()
    const states = yield* Ref.make(new Map<string, string | undefined>())
    return Readiness.of({
      set: (component, state) => Ref.update(states, (map) => new Map(map).set(component, state.up ? undefined : state.reason)),
      report: Ref.get(states).pipe(Effect.map((map) => {
        const failing = [...map].flatMap(([component, reason]) => reason === undefined ? [] : [{ component, reason }])
        return { ready: failing.length === 0 && map.size > 0, failing, uptimeMs: Date.now() - startedAt }
      }))
    })
  }))
}
