/**
 * The `MEDIA:` grammar of reference/rich-output-protocol.md (positive and
 * negative cases from the doc and from OpenClaw's parser tests), and the
 * resolution rules: workspace and media folder only, allowed document types
 * whose content matches, the size cap, public https only, a note for each
 * reference that cannot be attached.
 */
import * as fs from "node:fs/promises"
import * as http from "node:http"
import * as https from "node:https"
import * as net from "node:net"
import * as path from "node:path"
import * as zlib from "node:zlib"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import {
  blockedHost,
  contentProblem,
  downloadFile,
  MAX_OUTBOUND_FILE_BYTES,
  MAX_REPLY_FILES,
  resolveReplyMedia,
  splitReplyMedia
} from "../../src/channels/ReplyMedia.ts"
import type { DownloadOptions } from "../../src/channels/ReplyMedia.ts"
import { isPublicAddress } from "../../src/platform/GuardedFetch.ts"
import * as TestApp from "../support/TestApp.ts"

const values = (reply: string) => splitReplyMedia(reply).media.map((ref) => ref.value)
const problems = (reply: string) => splitReplyMedia(reply).media.map((ref) => ref.problem)

/** The reply is left exactly as it was: no attachment, no line removed. */
const staysText = (reply: string) => {
  const split = splitReplyMedia(reply)
  assert.deepStrictEqual(split.media, [], reply)
  assert.strictEqual(split.text, reply)
}

/**
 * A self-signed certificate for example.com and *.example.com (EC P-256,
 * valid 2000-2126), so the https-only download path runs against loopback
 * servers: the tests' `lookup` maps the example.com names to 127.0.0.x and
 * `isPublic` lets one loopback alias stand in for a public address.
 */
const TLS_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgXAImYnaE86uW2yt9
UODTCnyTT4ovx7impmgDCyf9LKehRANCAATsOOTAVxySCKNfYUZsXcAhunMgHZQv
yWliWsTHJRgcqb1T/R6Huq07RgmMnAOcGyNpEoc+nB3ck2ZjcN5eGiMU
-----END PRIVATE KEY-----`
const TLS_CERT = `-----BEGIN CERTIFICATE-----
MIIBdjCCARygAwIBAgIBATAKBggqhkjOPQQDAjAWMRQwEgYDVQQDDAtleGFtcGxl
LmNvbTAgFw0wMDAxMDEwMDAwMDBaGA8yMTI2MDEwMTAwMDAwMFowFjEUMBIGA1UE
AwwLZXhhbXBsZS5jb20wWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATsOOTAVxyS
CKNfYUZsXcAhunMgHZQvyWliWsTHJRgcqb1T/R6Huq07RgmMnAOcGyNpEoc+nB3c
k2ZjcN5eGiMUo1kwVzAPBgNVHRMBAf8EBTADAQH/MCUGA1UdEQQeMByCC2V4YW1w
bGUuY29tgg0qLmV4YW1wbGUuY29tMB0GA1UdDgQWBBTTSTYdk6LoB7XMhvXfdgew
EbovizAKBggqhkjOPQQDAgNIADBFAiBP62PgoxmwWyEEXf5Lhix2H6ebLGBuKOQT
47RvOVofugIhAIZMRa1A1yDN4FF0Tfy/YHhaeg+JD8+37r68VVE5Wyye
-----END CERTIFICATE-----`

/** An https server for *.example.com on `host`; counts raw TCP connections. */
const httpsServer = (host: string, handler: http.RequestListener, port = 0) =>
  Effect.acquireRelease(
    Effect.tryPromise(() =>
      new Promise<{ readonly server: https.Server; readonly port: number; readonly connections: () => number }>((resolve, reject) => {
        let connections = 0
        const server = https.createServer({ key: TLS_KEY, cert: TLS_CERT }, handler)
        server.on("connection", () => connections++)
        server.once("error", reject)
        server.listen(port, host, () => {
          const address = server.address()
          if (address === null || typeof address === "string") return reject(new Error("no port"))
          resolve({ server, port: address.port, connections: () => connections })
        })
      })),
    ({ server }) => Effect.sync(() => {
      server.closeAllConnections()
      server.close()
    })
  )

/** A plain TCP listener that only counts who reaches it: the private service a rebinding host would point at. */
const tcpListener = (host: string, port: number) =>
  Effect.acquireRelease(
    Effect.tryPromise(() =>
      new Promise<{ readonly server: net.Server; readonly connections: () => number }>((resolve, reject) => {
        let connections = 0
        const server = net.createServer((socket) => {
          connections++
          socket.destroy()
        })
        server.once("error", reject)
        server.listen(port, host, () => resolve({ server, connections: () => connections }))
      })),
    ({ server }) => Effect.sync(() => server.close())
  )

/** Name resolution for the tests: example.com names to loopback aliases, nothing else. */
const names = (table: Readonly<Record<string, string>>) => async (host: string): Promise<ReadonlyArray<string>> => {
  const address = table[host]
  return address === undefined ? [] : [address]
}

/** 127.0.0.2 plays a public server; every other address is what it is. */
const testOptions = (lookup: (host: string) => Promise<ReadonlyArray<string>>): DownloadOptions => ({
  lookup,
  isPublic: (address) => address === "127.0.0.2" || isPublicAddress(address),
  ca: TLS_CERT
})

const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==", "base64")

describe("splitReplyMedia: what is a MEDIA: line", () => {
  it("the doc's valid example: a standalone line after the text is removed and attached", () => {
    const split = splitReplyMedia("Here is the generated image.\n\nMEDIA:/workspace/image.png")
    assert.strictEqual(split.text, "Here is the generated image.")
    assert.deepStrictEqual(split.media, [{ raw: "/workspace/image.png", value: "/workspace/image.png", kind: "local" }])
  })

  it("the doc's negative examples stay ordinary text: Markdown wrappers and inline prose", () => {
    staysText("**MEDIA:/workspace/image.png**")
    staysText("`MEDIA:/workspace/image.png`")
    staysText("Here is your image: MEDIA:/workspace/image.png")
    staysText("> MEDIA:/workspace/image.png")
    staysText("- MEDIA:/workspace/image.png")
    staysText("The MEDIA: tag fails to deliver")
    staysText("MEDIA:screenshot")
    staysText("MEDIA:")
    staysText("media:/workspace/image.png")
    staysText("MEDIA: version v1.2 released")
  })

  it("up to three leading spaces are accepted", () => {
    for (const indent of [" ", "  ", "   "]) assert.deepStrictEqual(values(`${indent}MEDIA:./shot.png`), ["./shot.png"])
  })

  it("four spaces or a tab after a blank line is an indented code block; continuing a paragraph it is not", () => {
    staysText("Example:\n\n    MEDIA:/workspace/image.png")
    staysText("Example:\n\n\tMEDIA:/workspace/image.png")
    staysText("    MEDIA:/workspace/image.png")
    const continued = splitReplyMedia("Caption\n    MEDIA:https://example.com/a.png")
    assert.strictEqual(continued.text, "Caption")
    assert.deepStrictEqual(continued.media.map((ref) => ref.value), ["https://example.com/a.png"])
  })

  it("fenced code blocks keep their MEDIA: lines, with backticks or tildes, until the matching fence", () => {
    const reply = "Before\nMEDIA:https://example.com/a.png\n```text\nMEDIA:https://example.com/ignored.png\n```\nAfter"
    const split = splitReplyMedia(reply)
    assert.deepStrictEqual(split.media.map((ref) => ref.value), ["https://example.com/a.png"])
    assert.strictEqual(split.text, "Before\n```text\nMEDIA:https://example.com/ignored.png\n```\nAfter")
    staysText("~~~~\nMEDIA:/a.png\n~~~\nMEDIA:/b.png\n~~~~")
    staysText("```\nMEDIA:/a.png") // an unclosed fence runs to the end
    // After the fence closes, lines count again.
    assert.deepStrictEqual(values("```\nx\n```\nMEDIA:/after.png"), ["/after.png"])
  })

  it("the quoted form keeps punctuation that belongs to the reference; unquoted, trailing punctuation is dropped", () => {
    assert.deepStrictEqual(values("MEDIA:\"https://example.com/video.mp4?token=ends,\""), ["https://example.com/video.mp4?token=ends,"])
    assert.deepStrictEqual(values("MEDIA:https://example.com/video.mp4?token=ends,"), ["https://example.com/video.mp4?token=ends"])
    assert.deepStrictEqual(values("MEDIA:\"/Users/pete/My Files/render final.png\""), ["/Users/pete/My Files/render final.png"])
    assert.deepStrictEqual(values("MEDIA:\"/tmp/first image.png\" \"/tmp/second image.png\""), ["/tmp/first image.png", "/tmp/second image.png"])
  })

  it("paths: absolute, relative, ~/, bare file names, with spaces; several on one line", () => {
    assert.deepStrictEqual(values("MEDIA:/Users/pete/My Files/Project Assets/render final.png"), ["/Users/pete/My Files/Project Assets/render final.png"])
    assert.deepStrictEqual(values("MEDIA:/tmp/album.v1/photo.png copy.png"), ["/tmp/album.v1/photo.png copy.png"])
    assert.deepStrictEqual(values("MEDIA:./screenshots/image.png"), ["./screenshots/image.png"])
    assert.deepStrictEqual(values("MEDIA:media/inbound/image.png"), ["media/inbound/image.png"])
    assert.deepStrictEqual(values("MEDIA:~/Pictures/My File.png"), ["~/Pictures/My File.png"])
    assert.deepStrictEqual(values("MEDIA:image.png"), ["image.png"])
    assert.deepStrictEqual(values("MEDIA:render final.png"), ["render final.png"])
    assert.deepStrictEqual(values("MEDIA:/tmp/a.png /tmp/b.png"), ["/tmp/a.png", "/tmp/b.png"])
    assert.deepStrictEqual(values("MEDIA:/tmp/a.png media/b.png"), ["/tmp/a.png", "media/b.png"])
    assert.deepStrictEqual(values("MEDIA:/tmp/a.png https://example.com/b.png"), ["/tmp/a.png", "https://example.com/b.png"])
    assert.deepStrictEqual(values("MEDIA:file:///tmp/report.pdf"), ["/tmp/report.pdf"])
  })

  it("traversal, ~user and unsafe remote references are directives with a problem (a note), never attached", () => {
    for (const reply of ["MEDIA:../../../etc/passwd", "MEDIA:./foo/../../../etc/shadow", "MEDIA:~/Pictures/../../.ssh/id_rsa", "MEDIA:file:///tmp/../secret.png"]) {
      assert.deepStrictEqual(problems(reply), ["the path goes up with .."], reply)
    }
    assert.deepStrictEqual(problems("MEDIA:~user/Pictures/a.png"), ["only ~/ paths are supported"])
    const unsafe: ReadonlyArray<readonly [string, string]> = [
      ["MEDIA:http://example.com/a.png", "only https: links are attached"],
      ["MEDIA:https://intranet/a.png", "it is an internal host name"],
      ["MEDIA:https://localhost/a.png", "it is an internal host name"],
      ["MEDIA:https://localhost../a.png", "it is an internal host name"],
      ["MEDIA:https://127.0.0.1/a.png", "it is a private or local address"],
      ["MEDIA:https://127.0.0.1../a.png", "it is a private or local address"],
      ["MEDIA:https://2130706433/a.png", "it is a private or local address"],
      ["MEDIA:https://169.254.169.254/latest/meta-data", "it is a private or local address"],
      ["MEDIA:https://10.1.2.3/a.png", "it is a private or local address"],
      ["MEDIA:https://[::1]/a.png", "it is a private or local address"],
      ["MEDIA:https://[fe80::1]/a.png", "it is a private or local address"],
      ["MEDIA:https://[::ffff:127.0.0.1]/a.png", "it is a private or local address"],
      ["MEDIA:https://metadata.google.internal/a.png", "it is an internal host name"],
      ["MEDIA:https://media.local/a.png", "it is an internal host name"],
      ["MEDIA:https://user:pw@example.com/a.png", "links with credentials are not attached"],
      ["MEDIA:ftp://example.com/a.png", "ftp: links are not supported"]
    ]
    for (const [reply, problem] of unsafe) {
      const split = splitReplyMedia(`Text\n${reply}`)
      assert.deepStrictEqual(split.media.map((ref) => ref.problem), [problem], reply)
      assert.strictEqual(split.text, "Text", "the line is removed: its note says what happened")
    }
    assert.isUndefined(splitReplyMedia("MEDIA:https://example.com/a.png").media[0]?.problem)
  })

  it("removing a line leaves neither a doubled blank line nor blank lines at the ends; CRLF lines work", () => {
    assert.strictEqual(splitReplyMedia("First\n\nMEDIA:https://example.com/a.png\n\nSecond").text, "First\n\nSecond")
    assert.strictEqual(splitReplyMedia("MEDIA:/a.png\n\nOnly text").text, "Only text")
    assert.strictEqual(splitReplyMedia("MEDIA:/a.png").text, "")
    assert.deepStrictEqual(values("Hi\r\nMEDIA:/a.png\r\n"), ["/a.png"])
  })

  it("is deterministic, and a reply without MEDIA: is returned as it is", () => {
    const reply = "A\nMEDIA:/x.png\n```\nMEDIA:/y.png\n```"
    assert.deepStrictEqual(splitReplyMedia(reply), splitReplyMedia(reply))
    const plain = "no media here\n\n    code"
    assert.strictEqual(splitReplyMedia(plain).text, plain)
  })
})

describe("addresses and content", () => {
  it("public addresses only", () => {
    for (const address of ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"]) assert.isTrue(isPublicAddress(address), address)
    for (const address of ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.1.1", "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "::", "fc00::1", "fe80::1", "::ffff:8.8.8.8", "::7f00:1", "::a9fe:a9fe", "4000::1", "not-an-ip"]) {
      assert.isFalse(isPublicAddress(address), address)
    }
    assert.isUndefined(blockedHost("example.com"))
    assert.isDefined(blockedHost("printer"))
  })

  it("text documents must be text; typed files must carry their type's signature", () => {
    assert.isUndefined(contentProblem("md", Buffer.from("# hi")))
    assert.strictEqual(contentProblem("txt", Buffer.from([0xff, 0xfe, 0x00])), "it is not UTF-8 text")
    assert.strictEqual(contentProblem("txt", Buffer.from("a\u0000b")), "it is not text")
    assert.strictEqual(contentProblem("json", Buffer.from("{nope")), "it is not valid JSON")
    assert.isUndefined(contentProblem("png", PNG))
    assert.strictEqual(contentProblem("png", Buffer.from("not a png")), "its content is not a .png file")
    assert.isUndefined(contentProblem("pdf", Buffer.from("%PDF-1.7\n")))
    assert.isUndefined(contentProblem("docx", Buffer.from([0x50, 0x4b, 0x03, 0x04, 0])))
  })
})

describe("resolveReplyMedia", () => {
  it.live("attaches files from the workspace and the media folder; anything else becomes a note naming it and why", () =>
    Effect.gen(function*() {
      const root = yield* TestApp.tempDir()
      const workspace = path.join(root, "workspace")
      const mediaDir = path.join(root, "media")
      const outside = path.join(root, "outside")
      yield* Effect.promise(async () => {
        for (const dir of [workspace, mediaDir, outside, path.join(workspace, "out")]) await fs.mkdir(dir, { recursive: true })
        await fs.writeFile(path.join(workspace, "out", "chart.png"), PNG)
        await fs.writeFile(path.join(mediaDir, "notes.md"), "# Notes\n")
        await fs.writeFile(path.join(outside, "secret.txt"), "secret")
        await fs.writeFile(path.join(workspace, "fake.png"), "not a png")
        await fs.writeFile(path.join(workspace, "script.sh"), "echo hi")
        await fs.writeFile(path.join(workspace, "big.pdf"), Buffer.alloc(MAX_OUTBOUND_FILE_BYTES + 1))
        await fs.symlink(path.join(outside, "secret.txt"), path.join(workspace, "link.txt"))
      })
      const reply = [
        "Done.",
        "MEDIA:out/chart.png",
        `MEDIA:${path.join(mediaDir, "notes.md")}`,
        `MEDIA:${path.join(outside, "secret.txt")}`,
        "MEDIA:link.txt",
        "MEDIA:missing.pdf",
        "MEDIA:fake.png",
        "MEDIA:script.sh",
        "MEDIA:big.pdf",
        "MEDIA:../outside/secret.txt",
        "MEDIA:http://example.com/a.png",
        "MEDIA:~/chart.png"
      ].join("\n")
      const split = splitReplyMedia(reply)
      assert.strictEqual(split.text, "Done.")
      const resolved = yield* resolveReplyMedia(split.media, { workspace, mediaDir, homeDir: workspace })
      assert.deepStrictEqual(resolved.files.map((file) => [file.name, file.contentType, file.data.byteLength]), [
        ["chart.png", "image/png", PNG.byteLength],
        ["notes.md", "text/markdown", 8]
      ])
      assert.deepStrictEqual(resolved.notes, [
        `⚠️ Could not attach ${path.join(outside, "secret.txt")}: only files in the agent's workspace or the media folder are attached.`,
        "⚠️ Could not attach link.txt: only files in the agent's workspace or the media folder are attached.",
        "⚠️ Could not attach missing.pdf: not found.",
        "⚠️ Could not attach fake.png: its content is not a .png file.",
        "⚠️ Could not attach script.sh: .sh files are not attached.",
        "⚠️ Could not attach big.pdf: larger than 8 MiB.",
        "⚠️ Could not attach ../outside/secret.txt: the path goes up with ...",
        "⚠️ Could not attach http://example.com/a.png: only https: links are attached.",
        "⚠️ Could not attach ~/chart.png: not found."
      ])
    }))

  it.live(`at most ${MAX_REPLY_FILES} files go with one reply`, () =>
    Effect.gen(function*() {
      const workspace = yield* TestApp.tempDir()
      yield* Effect.promise(() => fs.writeFile(path.join(workspace, "a.txt"), "a"))
      const refs = splitReplyMedia(Array.from({ length: MAX_REPLY_FILES + 1 }, () => "MEDIA:a.txt").join("\n")).media
      const resolved = yield* resolveReplyMedia(refs, { workspace, mediaDir: path.join(workspace, "..", "media-h33-none") })
      assert.strictEqual(resolved.files.length, MAX_REPLY_FILES)
      assert.deepStrictEqual(resolved.notes, [`⚠️ Could not attach a.txt: at most ${MAX_REPLY_FILES} files go with one reply.`])
    }))

  it.live("a public host name that resolves to a private address is refused before any request", () =>
    Effect.gen(function*() {
      const error = yield* downloadFile(new URL("https://files.example.com/a.png"), 0, { publicOnly: true, lookup: async () => ["127.0.0.1"] }).pipe(Effect.flip)
      assert.strictEqual(error, "files.example.com resolves to a non-public address (127.0.0.1)")
      const plain = yield* downloadFile(new URL("http://files.example.com/a.png"), 0, { publicOnly: true, lookup: async () => ["93.184.216.34"] }).pipe(Effect.flip)
      assert.strictEqual(plain, "only https: links are attached")
    }))
})

describe("downloadFile: pinned connections", () => {
  /** A "public" https server on 127.0.0.2 and a private listener on 127.0.0.1 at the same port. */
  const publicAndPrivate = (handler: http.RequestListener) =>
    Effect.gen(function*() {
      const open = yield* httpsServer("127.0.0.2", handler)
      const closed = yield* tcpListener("127.0.0.1", open.port)
      return { open, closed }
    }).pipe(Effect.retry(Schedule.recurs(5)))

  it.live("a host that answers a public address first and 127.0.0.1 next is connected to the address that was checked", () =>
    Effect.gen(function*() {
      const { open, closed } = yield* publicAndPrivate((_request, response) => {
        response.writeHead(200, { "content-type": "image/png" })
        response.end(PNG)
      })
      let calls = 0
      const rebinding = async (): Promise<ReadonlyArray<string>> => ++calls === 1 ? ["127.0.0.2"] : ["127.0.0.1"]
      const file = yield* downloadFile(new URL(`https://rebind.example.com:${open.port}/a.png`), 0, { ...testOptions(rebinding), publicOnly: true })
      assert.deepStrictEqual(Buffer.from(file.data), PNG)
      assert.strictEqual(file.name, "a.png")
      assert.strictEqual(calls, 1, "one resolution per connection: the checked answer is the one used")
      assert.strictEqual(open.connections(), 1)
      assert.strictEqual(closed.connections(), 0, "the loopback service is never reached")
      // The other order: the private answer comes first and nothing is connected at all.
      calls = 0
      const privateFirst = async (): Promise<ReadonlyArray<string>> => ++calls === 1 ? ["127.0.0.1"] : ["127.0.0.2"]
      const error = yield* downloadFile(new URL(`https://rebind.example.com:${open.port}/a.png`), 0, { ...testOptions(privateFirst), publicOnly: true }).pipe(Effect.flip)
      assert.strictEqual(error, "rebind.example.com resolves to a non-public address (127.0.0.1)")
      assert.strictEqual(closed.connections(), 0)
      assert.strictEqual(open.connections(), 1)
    }))

  it.live("one non-public address among several refuses the host", () =>
    Effect.gen(function*() {
      const { open, closed } = yield* publicAndPrivate((_request, response) => response.end(PNG))
      const mixed = async (): Promise<ReadonlyArray<string>> => ["127.0.0.2", "127.0.0.1"]
      const error = yield* downloadFile(new URL(`https://mixed.example.com:${open.port}/a.png`), 0, { ...testOptions(mixed), publicOnly: true }).pipe(Effect.flip)
      assert.strictEqual(error, "mixed.example.com resolves to a non-public address (127.0.0.1)")
      assert.strictEqual(open.connections() + closed.connections(), 0)
    }))

  it.live("every redirect hop is checked: private, internal, http: and literal private targets are refused unreached", () =>
    Effect.gen(function*() {
      const inner = yield* httpsServer("127.0.0.1", (_request, response) => response.end(PNG))
      const targets: Readonly<Record<string, string>> = {
        "/to-private": `https://inside.example.com:${inner.port}/a.png`,
        "/to-localhost": `https://localhost:${inner.port}/a.png`,
        "/to-literal": `https://127.0.0.1:${inner.port}/a.png`,
        "/to-metadata": "https://169.254.169.254/latest/meta-data",
        "/to-http": `http://files.example.com:${inner.port}/a.png`,
        "/to-public": "/final.png",
        "/loop": "/loop"
      }
      const outer = yield* httpsServer("127.0.0.2", (request, response) => {
        const location = targets[request.url ?? ""]
        if (location !== undefined) {
          response.writeHead(302, { location })
          return response.end()
        }
        response.writeHead(200, { "content-type": "image/png" })
        response.end(PNG)
      })
      const options: DownloadOptions = {
        ...testOptions(names({ "files.example.com": "127.0.0.2", "inside.example.com": "127.0.0.1" })),
        publicOnly: true
      }
      const fetchPath = (pathname: string) => downloadFile(new URL(`https://files.example.com:${outer.port}${pathname}`), 0, options)
      const refused = yield* Effect.forEach(["/to-private", "/to-localhost", "/to-literal", "/to-metadata", "/to-http", "/loop"], (pathname) => fetchPath(pathname).pipe(Effect.flip))
      assert.deepStrictEqual(refused, [
        "inside.example.com resolves to a non-public address (127.0.0.1)",
        "it is an internal host name",
        "it is a private or local address",
        "it is a private or local address",
        "only https: links are attached",
        "too many redirects"
      ])
      assert.strictEqual(inner.connections(), 0, "no refused hop was connected to")
      const followed = yield* fetchPath("/to-public")
      assert.deepStrictEqual(Buffer.from(followed.data), PNG)
      assert.strictEqual(followed.name, "to-public", "the name comes from the URL that was asked for")
    }))

  it.live("the size cap holds for a declared length and for a streamed body; gzip is decoded under the same cap", () =>
    Effect.gen(function*() {
      const server = yield* httpsServer("127.0.0.2", (request, response) => {
        if (request.url === "/declared.pdf") {
          response.writeHead(200, { "content-length": String(MAX_OUTBOUND_FILE_BYTES + 1) })
          return response.end()
        }
        if (request.url === "/streamed.pdf") {
          response.writeHead(200, { "content-type": "application/pdf" })
          const chunk = Buffer.alloc(1024 * 1024)
          for (let i = 0; i < 8; i++) response.write(chunk)
          return response.end(Buffer.alloc(1))
        }
        if (request.url === "/bomb.pdf") {
          response.writeHead(200, { "content-encoding": "gzip" })
          return response.end(zlib.gzipSync(Buffer.alloc(MAX_OUTBOUND_FILE_BYTES + 1)))
        }
        if (request.url === "/br.png") {
          response.writeHead(200, { "content-encoding": "br" })
          return response.end(zlib.brotliCompressSync(PNG))
        }
        response.writeHead(200, { "content-encoding": "gzip", "content-type": "image/png" })
        response.end(zlib.gzipSync(PNG))
      })
      const options: DownloadOptions = { ...testOptions(names({ "files.example.com": "127.0.0.2" })), publicOnly: true }
      const get = (pathname: string) => downloadFile(new URL(`https://files.example.com:${server.port}${pathname}`), 0, options)
      assert.strictEqual(yield* get("/declared.pdf").pipe(Effect.flip), "larger than 8 MiB")
      assert.strictEqual(yield* get("/streamed.pdf").pipe(Effect.flip), "larger than 8 MiB")
      assert.strictEqual(yield* get("/bomb.pdf").pipe(Effect.flip), "larger than 8 MiB")
      assert.strictEqual(yield* get("/br.png").pipe(Effect.flip), "it is sent with content-encoding br")
      const zipped = yield* get("/zipped.png")
      assert.deepStrictEqual(Buffer.from(zipped.data), PNG)
      assert.strictEqual(zipped.contentType, "image/png")
    }))

  it.live("interruption aborts the request: the server sees its connection close", () =>
    Effect.gen(function*() {
      let closedResolve: () => void = () => {}
      const connectionClosed = new Promise<void>((resolve) => {
        closedResolve = resolve
      })
      const server = yield* httpsServer("127.0.0.2", (request) => {
        // Never answers; only notices when the client goes away.
        request.socket.on("close", () => closedResolve())
      })
      const options: DownloadOptions = { ...testOptions(names({ "files.example.com": "127.0.0.2" })), publicOnly: true }
      const outcome = yield* downloadFile(new URL(`https://files.example.com:${server.port}/slow.png`), 0, options).pipe(Effect.timeout("300 millis"), Effect.flip)
      assert.isTrue(typeof outcome !== "string" && outcome._tag === "TimeoutError")
      yield* Effect.tryPromise(() => connectionClosed).pipe(Effect.timeout("5 seconds"))
      assert.strictEqual(server.connections(), 1)
    }))

  it.live("without publicOnly (WS send) plain http and loopback stay allowed, redirects included", () =>
    Effect.gen(function*() {
      const server = yield* Effect.acquireRelease(
        Effect.tryPromise(() =>
          new Promise<{ readonly server: http.Server; readonly port: number }>((resolve, reject) => {
            const server = http.createServer((request, response) => {
              if (request.url === "/moved") {
                response.writeHead(301, { location: "/pic.png" })
                return response.end()
              }
              response.writeHead(200, { "content-type": "image/png" })
              response.end(PNG)
            })
            server.once("error", reject)
            server.listen(0, "127.0.0.1", () => {
              const address = server.address()
              if (address === null || typeof address === "string") return reject(new Error("no port"))
              resolve({ server, port: address.port })
            })
          })),
        ({ server }) => Effect.sync(() => {
          server.closeAllConnections()
          server.close()
        })
      )
      const direct = yield* downloadFile(new URL(`http://127.0.0.1:${server.port}/pic.png`), 2)
      assert.deepStrictEqual([direct.name, direct.contentType, Buffer.from(direct.data).equals(PNG)], ["pic.png", "image/png", true])
      const named = yield* downloadFile(new URL(`http://files.example.com:${server.port}/moved`), 0, { lookup: names({ "files.example.com": "127.0.0.1" }) })
      assert.deepStrictEqual([named.name, Buffer.from(named.data).equals(PNG)], ["moved", true])
      const ftp = yield* downloadFile(new URL("ftp://127.0.0.1/a.png"), 0).pipe(Effect.flip)
      assert.strictEqual(ftp, "ftp: links are not supported")
    }))
})

describe("resolveReplyMedia: remote names and types", () => {
  it.live("a URL name that is not an allowed type is named after the server's type and its bytes are checked", () =>
    Effect.gen(function*() {
      const MZ = Buffer.from("MZ\u0090\u0000 this program cannot be run in DOS mode")
      const routes: Readonly<Record<string, readonly [string, Buffer]>> = {
        "/evil.exe": ["image/png", PNG],
        "/tool.exe": ["image/png", MZ],
        "/download": ["application/pdf; charset=binary", Buffer.from("%PDF-1.7\n")],
        "/payload.exe": ["application/x-msdownload", MZ],
        "/page": ["text/html", Buffer.from("<html></html>")],
        "/vector.svg": ["image/svg+xml", Buffer.from("<svg/>")],
        "/photo.png": ["application/octet-stream", PNG],
        "/fake.png": ["image/png", MZ],
        "/shot": ["image/jpg", Buffer.from([0xff, 0xd8, 0xff, 0xe0])]
      }
      const server = yield* httpsServer("127.0.0.2", (request, response) => {
        const [type, body] = routes[request.url ?? ""] ?? ["text/plain", Buffer.from("missing")]
        response.writeHead(200, { "content-type": type })
        response.end(body)
      })
      const base = `https://files.example.com:${server.port}`
      const refs = splitReplyMedia(Object.keys(routes).map((route) => `MEDIA:${base}${route}`).join("\n")).media
      const resolved = yield* resolveReplyMedia(refs, { workspace: "/nonexistent", mediaDir: "/nonexistent/media" }, testOptions(names({ "files.example.com": "127.0.0.2" })))
      assert.deepStrictEqual(resolved.files.map((file) => [file.name, file.contentType, file.data.byteLength]), [
        ["file-1.png", "image/png", PNG.byteLength],
        ["file-3.pdf", "application/pdf", 9],
        ["photo.png", "image/png", PNG.byteLength],
        ["file-9.jpg", "image/jpeg", 4]
      ])
      assert.deepStrictEqual(resolved.notes, [
        `⚠️ Could not attach ${base}/tool.exe: its content is not a .png file.`,
        `⚠️ Could not attach ${base}/payload.exe: application/x-msdownload is not an attached file type.`,
        `⚠️ Could not attach ${base}/page: text/html is not an attached file type.`,
        `⚠️ Could not attach ${base}/vector.svg: image/svg+xml is not an attached file type.`,
        `⚠️ Could not attach ${base}/fake.png: its content is not a .png file.`
      ])
    }))
})

describe("resolveReplyMedia: the state directory and the agent's own files", () => {
  const write = (files: Readonly<Record<string, string | Buffer>>) =>
    Effect.promise(async () => {
      for (const [file, content] of Object.entries(files)) {
        await fs.mkdir(path.dirname(file), { recursive: true })
        await fs.writeFile(file, content)
      }
    })

  it.live("a workspace that holds the state directory (workspace: ~) does not open it, except its media folder", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const state = path.join(home, ".beamclaw")
      yield* write({
        [path.join(home, "notes.md")]: "# mine\n",
        [path.join(state, "beamclaw.json")]: "{\"channels\":{\"discord\":{\"token\":\"secret\"}}}",
        [path.join(state, "agents", "main", "sessions", "sessions.json")]: "{}",
        [path.join(state, "credentials", "oauth.json")]: "{}",
        [path.join(state, "media", "chart.png")]: PNG,
        [path.join(state, "workspace-other", "plan.md")]: "# other agent\n"
      })
      yield* Effect.promise(() => fs.symlink(path.join(state, "beamclaw.json"), path.join(home, "config-link.json")))
      const refs = splitReplyMedia([
        "MEDIA:notes.md",
        "MEDIA:.beamclaw/beamclaw.json",
        `MEDIA:${path.join(state, "agents", "main", "sessions", "sessions.json")}`,
        "MEDIA:~/.beamclaw/credentials/oauth.json",
        "MEDIA:config-link.json",
        "MEDIA:.beamclaw/workspace-other/plan.md",
        "MEDIA:.beamclaw/media/chart.png"
      ].join("\n")).media
      const resolved = yield* resolveReplyMedia(refs, { workspace: home, mediaDir: path.join(state, "media"), homeDir: home })
      assert.deepStrictEqual(resolved.files.map((file) => file.name), ["notes.md", "chart.png"])
      const stateNote = "it is in the gateway's state directory (only its media folder is attached)"
      assert.deepStrictEqual(resolved.notes, [
        `⚠️ Could not attach .beamclaw/beamclaw.json: ${stateNote}.`,
        `⚠️ Could not attach ${path.join(state, "agents", "main", "sessions", "sessions.json")}: ${stateNote}.`,
        `⚠️ Could not attach ~/.beamclaw/credentials/oauth.json: ${stateNote}.`,
        `⚠️ Could not attach config-link.json: ${stateNote}.`,
        `⚠️ Could not attach .beamclaw/workspace-other/plan.md: ${stateNote}.`
      ])
      // The same with the state directory named explicitly rather than taken from the media folder.
      const explicit = yield* resolveReplyMedia(refs.slice(1, 2), { workspace: home, mediaDir: path.join(home, "elsewhere"), stateDir: state })
      assert.deepStrictEqual(explicit.notes, [`⚠️ Could not attach .beamclaw/beamclaw.json: ${stateNote}.`])
    }))

  it.live("the default workspace inside the state directory is the agent's own; the state directory itself as workspace is not", () =>
    Effect.gen(function*() {
      const state = yield* TestApp.tempDir()
      const workspace = path.join(state, "workspace")
      yield* write({ [path.join(workspace, "out.png")]: PNG, [path.join(state, "beamclaw.json")]: "{}" })
      const refs = splitReplyMedia(`MEDIA:out.png\nMEDIA:${path.join(state, "beamclaw.json")}`).media
      const inside = yield* resolveReplyMedia(refs, { workspace, mediaDir: path.join(state, "media") })
      assert.deepStrictEqual(inside.files.map((file) => file.name), ["out.png"])
      assert.deepStrictEqual(inside.notes, [`⚠️ Could not attach ${path.join(state, "beamclaw.json")}: only files in the agent's workspace or the media folder are attached.`])
      const whole = yield* resolveReplyMedia(splitReplyMedia("MEDIA:beamclaw.json\nMEDIA:workspace/out.png").media, { workspace: state, mediaDir: path.join(state, "media") })
      assert.deepStrictEqual(whole.files, [])
      assert.strictEqual(whole.notes.length, 2)
      for (const note of whole.notes) assert.include(note, "it is in the gateway's state directory")
    }))

  it.live("the agent's bootstrap and memory files are refused by name, through symlinks and in any letter case", () =>
    Effect.gen(function*() {
      const workspace = yield* TestApp.tempDir()
      const own = ["AGENTS.md", "SOUL.md", "TOOLS.md", "IDENTITY.md", "USER.md", "HEARTBEAT.md", "BOOTSTRAP.md", "MEMORY.md", "memory.md"]
      yield* write({
        ...Object.fromEntries(own.map((name) => [path.join(workspace, name), `# ${name}\n`])),
        [path.join(workspace, "memory", "2026-11-25.md")]: "# today\n",
        [path.join(workspace, "docs", "SOUL.md")]: "# copy\n",
        [path.join(workspace, "docs", "readme.md")]: "# fine\n"
      })
      yield* Effect.promise(async () => {
        await fs.symlink(path.join(workspace, "SOUL.md"), path.join(workspace, "innocent.md"))
        await fs.symlink(path.join(workspace, "memory"), path.join(workspace, "notes"))
      })
      const names = [...own, "soul.md", "memory/2026-11-25.md", "./Memory/2026-11-25.md", "docs/SOUL.md", "innocent.md", "notes/2026-11-25.md", "docs/readme.md"]
      const refs = splitReplyMedia(names.map((name) => `MEDIA:${name}`).join("\n")).media
      const resolved = yield* resolveReplyMedia(refs, { workspace, mediaDir: path.join(workspace, "..", "media-h33-none") })
      assert.deepStrictEqual(resolved.files.map((file) => file.name), ["readme.md"])
      assert.deepStrictEqual(resolved.notes, names.slice(0, -1).map((name) => `⚠️ Could not attach ${name}: it is one of the agent's own files.`))
    }))
})
