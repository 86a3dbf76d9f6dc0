/** Every command line other than the plain gateway goes through effect/cli. */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect } from "effect"
import * as Cli from "../cli/Cli.ts"

export const main = (): void => Cli.run.pipe(Effect.provide(NodeServices.layer), NodeRuntime.runMain)
