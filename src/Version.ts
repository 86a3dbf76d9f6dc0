/**
 * The version BeamClaw reports (CLI `--version`, the gateway's hello-ok and
 * status), taken from package.json when the bundle is built so the two
 * cannot drift.
 */
import pkg from "../package.json" with { type: "json" }

export const VERSION: string = pkg.version
