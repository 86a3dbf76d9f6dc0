/**
 * The `beamclaw` executable. Kept tiny on purpose: it turns on V8's compile
 * cache before the real code is loaded (from chunks next to it), and starts the
 * gateway without loading the CLI parser when the command line only asks for
 * the gateway.
 */
import * as NodeModule from "node:module"
import { gatewayFlags } from "./entry/argv.ts"
import { tuneHeap } from "./entry/heap.ts"

// With no argument Node picks NODE_COMPILE_CACHE, else <tmpdir>/node-compile-cache,
// and honours NODE_DISABLE_COMPILE_CACHE. A cache is only a speed-up: any
// problem with it must not stop the start.
try {
  NodeModule.enableCompileCache()
} catch {
  // Start without the cache.
}

const flags = gatewayFlags(process.argv.slice(2))
if (flags !== undefined) {
  const gateway = await import("./entry/gateway.ts")
  // Once all of the gateway's modules are loaded (its services come after the
  // bind): setting a V8 flag changes the flag hash that V8 checks code caches
  // against, so Node's built-in modules loaded after it would be compiled
  // afresh (about 15 ms for the gateway's own).
  gateway.main(flags, tuneHeap)
} else {
  const cli = await import("./entry/cli.ts")
  cli.main()
}
