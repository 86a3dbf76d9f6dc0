/**
 * `beamclaw/client`: the typed RPC client of a BeamClaw gateway.
 *
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { BeamclawClient } from "beamclaw/client"
 *
 * const program = Effect.gen(function*() {
 *   const client = yield* BeamclawClient
 *   yield* client.Send({ text: "hello" }).pipe(
 *     Stream.runForEach((event) => event._tag === "TextDelta" ? Effect.sync(() => process.stdout.write(event.text)) : Effect.void)
 *   )
 * })
 * Effect.runPromise(program.pipe(Effect.provide(BeamclawClient.layer({ url: "ws://127.0.0.1:18789/rpc", token }))))
 * ```
 *
 * Exports the RPC group (`BeamclawRpcs`, to build your own client or a test
 * server), every payload/result/error schema, and the ready client.
 */
export * from "../gateway/rpc/Rpcs.ts"
export { BeamclawClient, type BeamclawClientOptions, type BeamclawRpcClient, ClientConfigError, DEFAULT_URL, normaliseUrl } from "./BeamclawClient.ts"
