/**
 * Recognises the command lines that only start the gateway, so the entry can
 * skip loading effect/cli for them. It imports nothing: it runs before any
 * chunk is loaded.
 */

export interface GatewayFlags {
  readonly port?: number
  readonly token?: string
}

// Anything Flag.Int would read differently ("+5", "1e3", "0x10", " 5") or that
// is too long to be exact as a number goes through the CLI instead.
const PORT = /^[0-9]{1,15}$/

/**
 * The gateway flags when `args` is empty, or `[gateway] [--port N] [--token T]`
 * (also as `--port=N`, `--token=T`), each flag at most once; undefined for
 * everything else, which the CLI parses, reports and documents as before.
 * Only what the CLI is certain to accept is taken: values that are empty,
 * start with "-" or read "gateway" are left to the CLI.
 */
export const gatewayFlags = (args: ReadonlyArray<string>): GatewayFlags | undefined => {
  let port: number | undefined
  let token: string | undefined
  let i = args[0] === "gateway" ? 1 : 0
  while (i < args.length) {
    const arg = args[i] ?? ""
    const eq = arg.indexOf("=")
    const name = eq >= 0 ? arg.slice(0, eq) : arg
    const value = eq >= 0 ? arg.slice(eq + 1) : args[i + 1]
    i += eq >= 0 ? 1 : 2
    if (value === undefined || value === "" || value.startsWith("-") || value === "gateway") return undefined
    if (name === "--port" && port === undefined && PORT.test(value)) port = Number(value)
    else if (name === "--token" && token === undefined) token = value
    else return undefined
  }
  return { ...(port !== undefined ? { port } : {}), ...(token !== undefined ? { token } : {}) }
}
