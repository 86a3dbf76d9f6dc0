/**
 * The `MEDIA:` grammar of reference/rich-output-protocol.md (positive and
 * negative cases from the doc and from OpenClaw's parser tests), and the
 * resolution rules: workspace and media folder only, allowed document types
 * whose content matches, the size cap, public https only, a note for each
 * reference that cannot be attached.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  blockedHost,
  contentProblem,
  downloadFile,
  isPublicAddress,
  MAX_OUTBOUND_FILE_BYTES,
  MAX_REPLY_FILES,
  resolveReplyMedia,
  splitReplyMedia
} from "../../src/channels/ReplyMedia.ts"
import * as TestApp from "../support/TestApp.ts"

const values = (reply: string) => splitReplyMedia(reply).media.map((ref) => ref.value)
const problems = (reply: string) => splitReplyMedia(reply).media.map((ref) => ref.problem)

/** The reply is left exactly as it was: no attachment, no line removed. */
const staysText = (reply: string) => {
  const split = splitReplyMedia(reply)
  assert.deepStrictEqual(split.media, [], reply)
  assert.strictEqual(split.text, reply)
}

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
    for (const address of ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.1.1", "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "::", "fc00::1", "fe80::1", "::ffff:8.8.8.8", "not-an-ip"]) {
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
      const resolved = yield* resolveReplyMedia(refs, { workspace, mediaDir: path.join(workspace, "media") })
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
