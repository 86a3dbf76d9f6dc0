/**
 * Fetches a URL a client handed us (an image or a file of a /v1/responses
 * request) without letting it reach what the gateway can reach and the
 * client should not: the machine itself, the private network, cloud metadata
 * endpoints. The same guards as OpenClaw's:
 *
 * - http and https only; an optional hostname allowlist (exact names, or
 *   `*.example.com` for the subdomains but not the apex), checked on every hop;
 * - names that are local by definition (localhost, *.localhost, *.local,
 *   *.internal, *.home.arpa, *.lan, metadata.google.internal) and single-label
 *   names refused before any lookup;
 * - every address the name resolves to must be a public unicast address
 *   (ipaddr.js's classification: loopback, private, link-local, carrier-grade
 *   NAT, unique-local, multicast, reserved, NAT64, 6to4, Teredo and the like
 *   are refused, as is IPv6 outside its global unicast block 2000::/3, where
 *   IPv4-compatible ::127.0.0.1 lies), and the connection is made to those
 *   checked addresses only, so a second DNS answer cannot point it elsewhere
 *   (DNS rebinding); the refusal of a name does not say which address it had;
 * - redirects followed by hand, each target checked as the first, up to a cap;
 * - one deadline for the whole fetch, the body included, and a byte limit
 *   enforced while the body streams in (a Content-Length over it is refused
 *   before the body is read).
 *
 * `allowPrivateNetwork` and `allowedHostnames` open the address check, for all
 * hosts or for named ones, as OpenClaw's `dangerouslyAllowPrivateNetwork` and
 * `allowedHostnames` do; the allowlist still applies.
 */
import * as dns from "node:dns"
import * as net from "node:net"
import { Duration, Effect, Schema } from "effect"
import ipaddr from "ipaddr.js"
import type * as Undici from "undici"
import { VERSION } from "../Version.ts"
import { importUndici } from "../provider/UndiciFetch.ts"

export class FetchRefused extends Schema.TaggedError<FetchRefused>()("FetchRefused", {
  url: Schema.String,
  reason: Schema.Literals(["invalid_url", "not_allowlisted", "private_address", "unresolved", "redirects", "status", "too_large", "timeout", "network"]),
  message: Schema.String
}) {}

export interface FetchPolicy {
  readonly maxBytes: number
  readonly timeoutMs: number
  readonly maxRedirects: number
  /** Exact host names or `*.suffix` patterns; empty means any host. */
  readonly hostnameAllowlist: ReadonlyArray<string>
  /** Private and other special-use addresses allowed for every host. */
  readonly allowPrivateNetwork: boolean
  /** Hosts whose addresses are not checked. */
  readonly allowedHostnames: ReadonlyArray<string>
  /** Resolves a host name to its addresses; the system resolver (getaddrinfo) by default. */
  readonly resolve?: ((hostname: string) => Promise<ReadonlyArray<dns.LookupAddress>>) | undefined
}

export interface Fetched {
  /** Where the bytes came from, after redirects. */
  readonly url: URL
  readonly contentType: string | undefined
  readonly bytes: Buffer
}

const LOCAL_NAMES: ReadonlySet<string> = new Set(["localhost", "localhost.localdomain", "metadata.google.internal"])
const LOCAL_SUFFIXES = [".localhost", ".local", ".internal", ".home.arpa", ".lan"]
const REDIRECTS: ReadonlySet<number> = new Set([301, 302, 303, 307, 308])

/** Lower case, without IPv6 brackets or trailing dots. */
export const normalizeHostname = (hostname: string): string => {
  const lower = hostname.trim().toLowerCase()
  const bare = lower.startsWith("[") && lower.endsWith("]") ? lower.slice(1, -1) : lower
  return bare.replace(/\.+$/, "")
}

/** An allowlist entry matches its exact name, or, as `*.suffix`, the names under it (never the suffix itself). */
export const hostnameAllowed = (hostname: string, allowlist: ReadonlyArray<string>): boolean => {
  const patterns = allowlist.map(normalizeHostname).filter((pattern) => pattern !== "" && pattern !== "*" && pattern !== "*.")
  if (patterns.length === 0) return true
  return patterns.some((pattern) =>
    pattern.startsWith("*.") ? hostname.endsWith(pattern.slice(1)) && hostname.length > pattern.length - 1 : hostname === pattern
  )
}

/** IPv6's global unicast block (RFC 4291): all public IPv6 addresses are in it. */
const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR("2000::/3")

/** Why an address may not be fetched from, or undefined for a public unicast address. */
export const addressProblem = (address: string): string | undefined => {
  if (!ipaddr.isValid(address)) return `${address} is not an IP address`
  const ip = ipaddr.parse(address)
  const range = ip.range()
  if (range !== "unicast") return `${address} is a ${range} address`
  // ipaddr.js calls unicast what it has no name for, among it IPv4-compatible
  // IPv6 (::127.0.0.1, ::169.254.169.254) and unassigned space: outside 2000::/3 none is public.
  // IPv4 inside IPv6 (mapped, NAT64, 6to4) is refused as a whole: a public server does not need it.
  if (ip.kind() === "ipv6" && !ip.match(GLOBAL_UNICAST_V6)) return `${address} is not a global unicast address`
  return undefined
}

/**
 * Why a host name (normalised) is one the private network answers, or
 * undefined: local names by definition, and single-label names, which only a
 * search domain or the hosts file resolves.
 */
export const localNameProblem = (hostname: string): string | undefined => {
  if (hostname === "") return "it names no host"
  if (net.isIP(hostname) !== 0) return undefined
  if (hostname.split(".").some((label) => label === "")) return `${hostname} is not a valid host name`
  if (!hostname.includes(".") || LOCAL_NAMES.has(hostname) || LOCAL_SUFFIXES.some((suffix) => hostname.endsWith(suffix))) return `${hostname} is a local name`
  return undefined
}

/** A unicast address on the public internet (not loopback, private, link-local, shared, reserved or multicast). */
export const isPublicAddress = (address: string): boolean => addressProblem(address) === undefined

interface Target {
  readonly url: URL
  readonly hostname: string
  readonly addresses: ReadonlyArray<{ readonly address: string; readonly family: number }>
}

const refused = (url: URL | string, reason: FetchRefused["reason"], message: string) => new FetchRefused({ url: String(url), reason, message })

const systemResolve = (hostname: string) => dns.promises.lookup(hostname, { all: true, order: "verbatim" })

const errorText = (error: unknown): string =>
  error instanceof Error ? ("code" in error && typeof error.code === "string" ? error.code : error.message) : String(error)

/** The URL's host, checked, with the addresses the connection may use. */
const resolveTarget = Effect.fnUntraced(function*(url: URL, policy: FetchPolicy) {
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return yield* refused(url, "invalid_url", `only http and https URLs are fetched, not ${url.protocol.slice(0, -1)}`)
  }
  if (url.username !== "" || url.password !== "") return yield* refused(url, "invalid_url", "URLs with credentials are not fetched")
  const hostname = normalizeHostname(url.hostname)
  if (!hostnameAllowed(hostname, policy.hostnameAllowlist)) return yield* refused(url, "not_allowlisted", `${hostname} is not in the URL allowlist`)
  const checked = !policy.allowPrivateNetwork && !policy.allowedHostnames.some((name) => normalizeHostname(name) === hostname)
  const local = checked ? localNameProblem(hostname) : undefined
  if (local !== undefined) return yield* refused(url, "private_address", local)
  const family = net.isIP(hostname)
  const addresses = family !== 0
    ? [{ address: hostname, family }]
    : yield* Effect.tryPromise({
      try: () => (policy.resolve ?? systemResolve)(hostname),
      catch: (error) => refused(url, "unresolved", `${hostname} could not be resolved (${errorText(error)})`)
    })
  if (addresses.length === 0) return yield* refused(url, "unresolved", `${hostname} resolves to no address`)
  if (checked) {
    for (const { address } of addresses) {
      const problem = addressProblem(address)
      if (problem === undefined) continue
      // A name's address stays unsaid: repeating it would map the private network's names for whoever asks.
      return yield* refused(url, "private_address", family !== 0 ? problem : `${hostname} resolves to a private or special-use address`)
    }
  }
  return { url, hostname, addresses } satisfies Target
})

/** A lookup that answers the checked addresses for the target's name and nothing else. */
const pinnedLookup = (target: Target): net.LookupFunction => (hostname, options, callback) => {
  if (normalizeHostname(hostname) !== target.hostname) {
    callback(Object.assign(new Error(`unexpected lookup of ${hostname}`), { code: "ENOTFOUND" }), "", 4)
    return
  }
  const wanted = options.family === 4 || options.family === 6 ? target.addresses.filter((entry) => entry.family === options.family) : target.addresses
  const usable = wanted.length > 0 ? wanted : target.addresses
  if (options.all === true) {
    // The callback's overload for `all` takes the list; LookupFunction types only the single-address form.
    Reflect.apply(callback, undefined, [null, usable.map((entry) => ({ address: entry.address, family: entry.family }))])
    return
  }
  const first = usable[0]!
  callback(null, first.address, first.family)
}

/** Drops a body not to be read; undici reports the abort as an error on it, which nobody is left to hear. */
const discard = (body: Undici.Dispatcher.ResponseData["body"]): void => {
  body.on("error", () => undefined)
  body.destroy()
}

const readLimited = async (body: Undici.Dispatcher.ResponseData["body"], url: URL, maxBytes: number): Promise<Buffer | FetchRefused> => {
  const chunks: Array<Buffer> = []
  let total = 0
  for await (const chunk of body) {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)
    total += bytes.length
    if (total > maxBytes) {
      discard(body)
      return refused(url, "too_large", `the response is larger than the limit of ${maxBytes} bytes`)
    }
    chunks.push(bytes)
  }
  return Buffer.concat(chunks, total)
}

type HopResult = { readonly _tag: "Redirect"; readonly location: URL } | { readonly _tag: "Body"; readonly fetched: Fetched }

const fetchHop = (undici: typeof Undici, target: Target, policy: FetchPolicy) =>
  Effect.tryPromise({
    try: async (signal): Promise<HopResult | FetchRefused> => {
      const agent = new undici.Agent({ connect: { lookup: pinnedLookup(target) } })
      try {
        const response = await undici.request(target.url.href, {
          method: "GET",
          dispatcher: agent,
          signal,
          headers: { "user-agent": `BeamClaw-Gateway/${VERSION}`, accept: "*/*" }
        })
        const header = (name: string): string | undefined => {
          const value = response.headers[name]
          return Array.isArray(value) ? value[0] : value
        }
        if (REDIRECTS.has(response.statusCode)) {
          discard(response.body)
          const location = header("location")
          if (location === undefined) return refused(target.url, "status", `a ${response.statusCode} redirect without a Location`)
          const next = URL.parse(location, target.url.href)
          if (next === null) return refused(target.url, "invalid_url", `a redirect to an invalid URL: ${location.slice(0, 200)}`)
          return { _tag: "Redirect", location: next }
        }
        if (response.statusCode < 200 || response.statusCode > 299) {
          discard(response.body)
          return refused(target.url, "status", `the server answered ${response.statusCode}`)
        }
        const declared = Number(header("content-length"))
        if (Number.isFinite(declared) && declared > policy.maxBytes) {
          discard(response.body)
          return refused(target.url, "too_large", `the response has ${declared} bytes; the limit is ${policy.maxBytes}`)
        }
        const bytes = await readLimited(response.body, target.url, policy.maxBytes)
        if (bytes instanceof FetchRefused) return bytes
        return { _tag: "Body", fetched: { url: target.url, contentType: header("content-type"), bytes } }
      } finally {
        agent.destroy().catch(() => undefined)
      }
    },
    catch: (error) => refused(target.url, "network", `the fetch failed: ${error instanceof Error ? error.message : String(error)}`)
  }).pipe(Effect.flatMap((result) => result instanceof FetchRefused ? Effect.fail(result) : Effect.succeed(result)))

/** GETs `url` under `policy`; interrupting the effect aborts the request. */
export const guardedFetch = Effect.fnUntraced(function*(url: string, policy: FetchPolicy) {
  const first = URL.parse(url)
  if (first === null) return yield* refused(url, "invalid_url", "not a valid URL")
  const undici = yield* Effect.tryPromise({ try: importUndici, catch: (error) => refused(url, "network", `the HTTP client could not load: ${String(error)}`) })
  const run = Effect.gen(function*() {
    let current = first
    for (let redirects = 0; ; redirects++) {
      const target = yield* resolveTarget(current, policy)
      const hop = yield* fetchHop(undici, target, policy)
      if (hop._tag === "Body") return hop.fetched
      if (redirects >= policy.maxRedirects) return yield* refused(url, "redirects", `more than ${policy.maxRedirects} redirects`)
      current = hop.location
    }
  })
  return yield* run.pipe(
    Effect.timeoutOrElse({
      duration: Duration.millis(policy.timeoutMs),
      orElse: () => Effect.fail(refused(url, "timeout", `no complete answer within ${policy.timeoutMs} ms`))
    })
  )
})
