/**
 * The gateway process: what `beamclaw` and `beamclaw gateway` run. The entry
 * calls `main` directly for those command lines so that start-up does not load
 * or evaluate effect/cli; failures still print and exit exactly as they do
 * under `Command.run`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Console, Effect, Layer, Runtime } from "effect"
import * as Gateway from "../runtime/Gateway.ts"
import type { GatewayFlags } from "./argv.ts"

export type { GatewayFlags } from "./argv.ts"

/** Builds the gateway and keeps it running until interrupted. */
export const launchGateway = (flags: GatewayFlags, afterLoad?: () => void) => Layer.launch(Gateway.layer({ flags, afterLoad }))

/**
 * What Cli.ts's `userFacing` plus `Command.run` do with a failure: one
 * `beamclaw: <message>` block rendered by the CLI's default formatter on
 * stderr, then exit code 1 without a second report from runMain. effect/cli
 * is loaded only here, once something has already failed.
 */
const reportLikeCli = <A, E extends { readonly message: string }, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.catch((error) =>
    Effect.gen(function*() {
      const userMessage = `beamclaw: ${error.message}`
      const cli = yield* Effect.tryPromise(() => import("effect/cli")).pipe(Effect.option)
      if (cli._tag === "None") {
        yield* Console.error(`\nERROR\n  ${userMessage}`)
        return yield* Effect.fail(Object.assign(new Error(userMessage), { [Runtime.errorReported]: false }))
      }
      const { CliError, CliOutput, TerminalCapabilities } = cli.value
      const rendered = new CliError.UserError({ cause: error, userMessage })
      const { canColor } = yield* TerminalCapabilities.TerminalCapabilities
      yield* Console.error(CliOutput.defaultFormatter({ colors: canColor }).formatError(rendered))
      return yield* Effect.fail(Object.assign(rendered, { [Runtime.errorReported]: false }))
    })
  ))

/** A signal is how a supervisor asks the gateway to stop: a graceful stop exits 0, not 130. */
const teardown: Runtime.Teardown = (exit, onExit) =>
  exit._tag === "Failure" && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)

export const main = (flags: GatewayFlags, afterLoad?: () => void): void =>
  launchGateway(flags, afterLoad).pipe(reportLikeCli, NodeRuntime.runMain({ teardown }))
