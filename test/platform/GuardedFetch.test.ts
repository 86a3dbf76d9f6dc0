/**
 * The SSRF guard against a real HTTP server on loopback: by default the
 * guard must refuse it (loopback is exactly what it protects), so the
 * fetching cases name the server's host in `allowedHostnames`, or pin a
 * made-up name to it through `resolve`.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { addressProblem, type FetchPolicy, FetchRefused, guardedFetch, hostnameAllowed } from "../../src/platform/GuardedFetch.ts"

interface Seen {
  readonly url: string
  readonly host: string | undefined
  readonly userAgent: string | undefined
}

const seen: Array<Seen> = []
const closed: Array<string> = []
let server: http.Server
let port = 0

beforeAll(async () => {
  server = http.createServer((request, response) => {
    const url = request.url ?? "/"
    seen.push({ url, host: request.headers.host, userAgent: request.headers["user-agent"] })
    request.socket.once("close", () => closed.push(url))
    const redirect = /^\/redirect\/(\d+)$/.exec(url)
    if (redirect !== null) {
      const left = Number(redirect[1])
      response.writeHead(302, { location: left === 0 ? "/hello.txt" : `/redirect/${left - 1}` }).end()
      return
    }
    switch (url) {
      case "/hello.txt":
        response.writeHead(200, { "content-type": "text/plain; charset=utf-8" }).end("hello from loopback")
        return
      case "/to-localhost":
        response.writeHead(301, { location: `http://localhost:${port}/hello.txt` }).end()
        return
      case "/declared-large":
        response.writeHead(200, { "content-type": "text/plain", "content-length": "5000" }).end("x".repeat(5000))
        return
      case "/streamed-large": {
        // No Content-Length: the limit has to be found while the body streams in; the server keeps sending.
        response.writeHead(200, { "content-type": "text/plain" })
        const timer = setInterval(() => response.write("y".repeat(1000)), 5)
        response.once("close", () => clearInterval(timer))
        return
      }
      case "/missing":
        response.writeHead(404).end("no")
        return
      case "/silent":
        // Never answers: the deadline has to end it.
        return
      default:
        response.writeHead(500).end()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  port = (server.address() as AddressInfo).port
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

const policy = (overrides: Partial<FetchPolicy> = {}): FetchPolicy => ({
  maxBytes: 1024,
  timeoutMs: 2000,
  maxRedirects: 3,
  hostnameAllowlist: [],
  allowPrivateNetwork: false,
  allowedHostnames: [],
  ...overrides
})
const trusted = (overrides: Partial<FetchPolicy> = {}) => policy({ allowedHostnames: ["127.0.0.1"], ...overrides })

const refusal = async (url: string, with_: FetchPolicy): Promise<FetchRefused> => {
  const exit = await Effect.runPromiseExit(guardedFetch(url, with_))
  if (Exit.isSuccess(exit)) return assert.fail(`expected ${url} to be refused, got ${exit.value.bytes.length} bytes`)
  const error = exit.cause.reasons.find((reason) => reason._tag === "Fail")?.error
  if (!(error instanceof FetchRefused)) return assert.fail(`expected a FetchRefused, got ${String(exit.cause)}`)
  return error
}

const base = () => `http://127.0.0.1:${port}`

describe("guardedFetch", () => {
  it("refuses loopback, private and local targets by default, before any request reaches them", async () => {
    const before = seen.length
    for (const url of [
      `${base()}/hello.txt`,
      `http://localhost:${port}/hello.txt`,
      `http://[::1]:${port}/hello.txt`,
      // Legacy IPv4 spellings are normalised by the URL parser to 127.0.0.1.
      `http://0x7f.1:${port}/hello.txt`,
      `http://2130706433:${port}/hello.txt`,
      `http://[::ffff:127.0.0.1]:${port}/hello.txt`,
      // IPv4-compatible (::/96, deprecated): ipaddr.js has no name for it and calls it unicast.
      `http://[::127.0.0.1]:${port}/hello.txt`,
      "http://[::169.254.169.254]/latest/meta-data/",
      "http://169.254.169.254/latest/meta-data/",
      "http://metadata.google.internal/computeMetadata/v1/",
      "http://printer.local/",
      "http://nas.home.arpa/",
      // A single label resolves only through a search domain or the hosts file: the private network's names.
      "http://intranet/",
      "http://10.0.0.1/",
      "http://[fd00::1]/"
    ]) {
      const error = await refusal(url, policy())
      assert.strictEqual(error.reason, "private_address", `${url}: ${error.message}`)
    }
    assert.strictEqual(seen.length, before, "no request reached the server")
  })

  it("refuses other schemes, credentials in the URL, unresolvable names and hosts outside the allowlist", async () => {
    assert.strictEqual((await refusal("ftp://example.com/file.txt", policy())).reason, "invalid_url")
    assert.strictEqual((await refusal("file:///etc/passwd", policy())).reason, "invalid_url")
    assert.strictEqual((await refusal(`http://user:secret@127.0.0.1:${port}/hello.txt`, trusted())).reason, "invalid_url")
    assert.strictEqual((await refusal("not a url", policy())).reason, "invalid_url")
    assert.strictEqual((await refusal("http://no-such-host.invalid/", policy())).reason, "unresolved")
    const outside = await refusal(`${base()}/hello.txt`, trusted({ hostnameAllowlist: ["cdn.example.com", "*.assets.example.com"] }))
    assert.strictEqual(outside.reason, "not_allowlisted")
    assert.include(outside.message, "127.0.0.1")
  })

  it("fetches from a host named in allowedHostnames, with its content type and our user agent", async () => {
    const fetched = await Effect.runPromise(guardedFetch(`${base()}/hello.txt`, trusted({ hostnameAllowlist: ["127.0.0.1"] })))
    assert.strictEqual(fetched.bytes.toString("utf8"), "hello from loopback")
    assert.strictEqual(fetched.contentType, "text/plain; charset=utf-8")
    assert.match(seen.at(-1)?.userAgent ?? "", /^BeamClaw-Gateway\//)
  })

  it("follows redirects up to the cap, checking each target as the first", async () => {
    const fetched = await Effect.runPromise(guardedFetch(`${base()}/redirect/2`, trusted()))
    assert.strictEqual(fetched.bytes.toString("utf8"), "hello from loopback")
    assert.strictEqual(fetched.url.pathname, "/hello.txt")
    assert.strictEqual((await refusal(`${base()}/redirect/3`, trusted())).reason, "redirects", "four redirects against a cap of three")
    assert.strictEqual((await refusal(`${base()}/redirect/0`, trusted({ maxRedirects: 0 }))).reason, "redirects")
    // 127.0.0.1 is trusted, localhost is not: the hop to it is refused.
    const hop = await refusal(`${base()}/to-localhost`, trusted())
    assert.strictEqual(hop.reason, "private_address")
    assert.notInclude(seen.map((entry) => entry.host ?? ""), `localhost:${port}`)
  })

  it("refuses a body over the limit: declared up front, or found while it streams in (the connection is dropped)", async () => {
    const declared = await refusal(`${base()}/declared-large`, trusted())
    assert.strictEqual(declared.reason, "too_large")
    assert.include(declared.message, "5000")
    const streamed = await refusal(`${base()}/streamed-large`, trusted())
    assert.strictEqual(streamed.reason, "too_large")
    await Effect.runPromise(Effect.sleep("200 millis"))
    assert.include(closed, "/streamed-large", "the server saw the download stop")
  })

  it("refuses an error status, and a server that does not answer within the deadline", async () => {
    const missing = await refusal(`${base()}/missing`, trusted())
    assert.strictEqual(missing.reason, "status")
    assert.include(missing.message, "404")
    const started = Date.now()
    const silent = await refusal(`${base()}/silent`, trusted({ timeoutMs: 300 }))
    assert.strictEqual(silent.reason, "timeout")
    assert.isBelow(Date.now() - started, 2000)
  })

  it("interrupting the fetch aborts the request", async () => {
    const fiber = Effect.runFork(guardedFetch(`${base()}/silent`, trusted({ timeoutMs: 30_000 })))
    await Effect.runPromise(Effect.sleep("200 millis"))
    assert.include(seen.map((entry) => entry.url), "/silent")
    const closedBefore = closed.filter((url) => url === "/silent").length
    await Effect.runPromise(Fiber.interrupt(fiber))
    await Effect.runPromise(Effect.sleep("200 millis"))
    assert.isAbove(closed.filter((url) => url === "/silent").length, closedBefore, "the server saw the request go away")
  })

  it("connects only to the addresses it checked (a name pinned by the resolver), and refuses a name with any private address without saying which", async () => {
    // A made-up name the system resolver does not know: reaching the server proves the connection used the checked answer.
    const pinned = await Effect.runPromise(guardedFetch(`http://rebind.test:${port}/hello.txt`, policy({
      allowedHostnames: ["rebind.test"],
      resolve: async () => [{ address: "127.0.0.1", family: 4 }]
    })))
    assert.strictEqual(pinned.bytes.toString("utf8"), "hello from loopback")
    assert.strictEqual(seen.at(-1)?.host, `rebind.test:${port}`)

    const mixed = await refusal(`http://mixed.test:${port}/hello.txt`, policy({
      resolve: async () => [{ address: "93.184.216.34", family: 4 }, { address: "127.0.0.1", family: 4 }]
    }))
    assert.strictEqual(mixed.reason, "private_address")
    // The answer is not repeated to the client: it would map the private network's names to their addresses.
    assert.include(mixed.message, "mixed.test")
    assert.notInclude(mixed.message, "127.0.0.1")
    const internal = await refusal("http://db.corp.example/", policy({ resolve: async () => [{ address: "10.20.30.40", family: 4 }] }))
    assert.strictEqual(internal.reason, "private_address")
    assert.notInclude(internal.message, "10.20.30.40")
  })

  it("classifies addresses and allowlist patterns", () => {
    for (const address of ["8.8.8.8", "2606:4700::1111"]) assert.isUndefined(addressProblem(address), address)
    for (const address of ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "198.18.0.1", "::1", "::", "fe80::1", "fd00::1", "::ffff:10.0.0.1", "::ffff:8.8.8.8", "64:ff9b::7f00:1", "2002:7f00:1::1", "2001:db8::1", "::7f00:1", "::a9fe:a9fe", "4000::1"]) {
      assert.isString(addressProblem(address), address)
    }
    assert.isTrue(hostnameAllowed("cdn.example.com", []))
    assert.isTrue(hostnameAllowed("cdn.example.com", ["CDN.example.com."]))
    assert.isTrue(hostnameAllowed("a.assets.example.com", ["*.assets.example.com"]))
    assert.isFalse(hostnameAllowed("assets.example.com", ["*.assets.example.com"]), "a wildcard does not match its apex")
    assert.isFalse(hostnameAllowed("evilassets.example.com", ["*.assets.example.com"]))
    assert.isFalse(hostnameAllowed("cdn.example.com.evil.net", ["cdn.example.com"]))
  })
})
