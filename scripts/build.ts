// Bundles src/main.ts into dist/main.js plus chunks in dist/chunks: unbundled
// Effect resolves thousands of modules at start-up and boots about four times
// slower. dist/main.js stays a small entry (compile cache on, then a dynamic
// import), so the gateway's start loads only the chunks it needs; the CLI
// parser and the provider SDK come in their own chunks, loaded on demand.
import { rm, writeFile } from "node:fs/promises"
import { builtinModules, createRequire } from "node:module"
import { build, type Plugin } from "rolldown"

const nodeBuiltins = [...builtinModules, ...builtinModules.map((name) => `node:${name}`)]
  // Resolved by httpWithoutFacade below; an external would win over the plugin.
  .filter((name) => name !== "http" && name !== "node:http")

// Bundled CommonJS code may call a bare `require`; ESM chunks have none.
const requireShim = "import { createRequire as __beamclawCreateRequire } from \"node:module\";\nconst require = __beamclawCreateRequire(import.meta.url);"

// A chunk holding a module that declares its own top-level `require` (the banner is
// opaque text to the bundler, which cannot rename around it) gets no shim: that one serves.
const OWN_REQUIRE = ["@effect/platform-node/dist/internal/http.js"]
const declaresRequire = (moduleIds: ReadonlyArray<string>): boolean =>
  moduleIds.some((id) => OWN_REQUIRE.some((suffix) => id.replaceAll("\\", "/").endsWith(suffix)))

// Node's ESM facade for node:http reads every export, and its WebSocket,
// CloseEvent and MessageEvent getters load Node's bundled undici (and zlib):
// about 10 ms of start-up for classes we never use. Taking node:http through
// require() skips the facade; those three names are left out, so code that
// imports them fails the build (see onLog) instead of getting undefined.
const HTTP_ID = "\0beamclaw:node:http"
const httpUndiciGetters = new Set(["WebSocket", "CloseEvent", "MessageEvent"])
const httpWithoutFacade: Plugin = {
  name: "beamclaw:http-without-esm-facade",
  resolveId: (id) => id === "node:http" || id === "http" ? HTTP_ID : null,
  load: (id) => {
    if (id !== HTTP_ID) return null
    const names = Object.keys(createRequire(import.meta.url)("node:http")).filter((name) => !httpUndiciGetters.has(name))
    return [
      `import { createRequire } from "node:module";`,
      `const http = createRequire(import.meta.url)("node:http");`,
      `export default http;`,
      ...names.map((name) => `export const ${name} = http.${name};`)
    ].join("\n")
  }
}

// `ws` is needed by @effect/platform-node's HTTP server only when the first WebSocket upgrade
// comes (its WebSocketServer is made on first use), but its ESM wrapper evaluates every part
// of it at start, and its buffer helper then looks for the optional native `bufferutil` on
// disk. The server's `import ... from "ws"` is given a stand-in that requires the (bundled)
// package on first use. Only the classes the platform constructs are offered; any other name
// fails the build (see onLog) rather than being undefined at run time.
const WS_LAZY_ID = "\0beamclaw:ws-lazy"
const wsOnFirstUse: Plugin = {
  name: "beamclaw:ws-on-first-use",
  resolveId: (id, importer) =>
    id === "ws" && importer !== undefined && /@effect[\\/]platform-node-shared[\\/]dist[\\/]NodeWS\.js$/.test(importer) ? WS_LAZY_ID : null,
  load: (id) => {
    if (id !== WS_LAZY_ID) return null
    return [
      `let ws;`,
      `const load = () => ws ??= require("ws");`,
      `export function WebSocket(...args) { return new (load().WebSocket)(...args); }`,
      `export function WebSocketServer(...args) { return new (load().WebSocketServer)(...args); }`
    ].join("\n")
  }
}

// V8 keeps a source with any non-ASCII character in it as a two-byte string: twice the
// memory, and at every start Node re-encodes each such chunk to UTF-8 to check its compile
// cache (about 7% of the instructions of a start). The "ascii" charset below escapes strings,
// regexps and identifiers; what it leaves is in comments, escaped here the same way, so every
// comment (license notices included) keeps its text. A line that does not look like a comment
// is left alone: escaping there could change what a String.raw template reads.
const NON_ASCII = /[^\x00-\x7f]/
const COMMENT_LINE = /^\s*(?:\/\/|\/\*|\*)/
const asciiComments: Plugin = {
  name: "beamclaw:ascii-comments",
  renderChunk: (code) => {
    if (!NON_ASCII.test(code)) return null
    const escaped = code.split("\n").map((line) =>
      NON_ASCII.test(line) && COMMENT_LINE.test(line)
        ? line.replace(/[^\x00-\x7f]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`)
        : line
    ).join("\n")
    // Only comments changed, and they carry no mappings: the chunk's source map still holds.
    return { code: escaped, map: null }
  }
}

// Two warnings from discord.js that every build would print: its optional native inflater
// (zlib-sync, imported lazily and caught when absent) and a direct eval in its shard-eval helper,
// which BeamClaw never calls. Anything else from discord.js is still reported.
const knownHarmless = (log: { readonly code?: string | undefined; readonly message: string; readonly id?: string | undefined }): boolean =>
  (log.code === "UNRESOLVED_IMPORT" && log.message.includes("'zlib-sync'") && log.message.includes("@discordjs/ws")) ||
  (log.code === "EVAL" && (log.id ?? log.message).includes("discord.js/src/client/Client.js"))

// BEAMCLAW_DIST_DIR builds elsewhere, so parallel test runs do not replace each other's bundle.
const outDir = process.env["BEAMCLAW_DIST_DIR"] ?? "dist"
await rm(outDir, { recursive: true, force: true })
await build({
  // The PDF reader runs in a worker thread, started from a file of its own (src/gateway/openresponses/PdfText.ts).
  input: { main: "src/main.ts", "pdf-worker": "src/gateway/openresponses/PdfWorker.ts" },
  platform: "node",
  external: nodeBuiltins,
  treeshake: true,
  plugins: [httpWithoutFacade, wsOnFirstUse, asciiComments],
  onLog: (level, log, handler) => {
    if (log.code === "MISSING_EXPORT" || log.code === "IMPORT_IS_UNDEFINED") handler("error", log)
    else if (knownHarmless(log)) return
    else handler(level, log)
  },
  output: {
    dir: outDir,
    format: "esm",
    entryFileNames: "[name].js",
    chunkFileNames: "chunks/[name]-[hash].js",
    banner: (chunk) => chunk.isEntry ? "#!/usr/bin/env node" : declaresRequire(chunk.moduleIds) ? "" : requireShim,
    sourcemap: true,
    charset: "ascii",
    minify: false,
    // Readable code, without the JSDoc that is most of Effect's dist (licence comments stay):
    // smaller chunks to read and hash at each start, and smaller sources held in the heap.
    comments: { legal: true, annotation: false, jsdoc: false },
    // Top-level `let`/`const` as `var`: no temporal-dead-zone checks while the chunks are
    // evaluated (about 2.5% of the instructions of a start).
    topLevelVar: true,
    // Everything the gateway needs before its port answers (src/entry/gateway.ts and all it
    // imports statically) in one chunk: each chunk costs a read, a hash, a compile-cache lookup
    // and a link, and the boot loaded a dozen of them. The CLI and the SDK stay in their own chunks.
    codeSplitting: {
      groups: [
        { name: "boot", test: /src[\\/]entry[\\/]gateway\.ts$/, priority: 2 },
        // What it loads right after the bind, likewise in one chunk: its services and route table.
        { name: "services", test: /src[\\/](runtime[\\/]GatewayServices|gateway[\\/](ws[\\/]WsRoutes|rpc[\\/]RpcRoutes|hooks[\\/]HookRoutes|openai[\\/]OpenAiRoutes|openresponses[\\/]ResponsesRoutes))\.ts$/, priority: 1 }
      ]
    }
  }
})
// The chunks are ES modules. Inside the repo the root package.json says so; a build
// elsewhere (BEAMCLAW_DIST_DIR=/tmp/...) would otherwise make Node parse every chunk
// to detect its format at each start.
await writeFile(`${outDir}/package.json`, `${JSON.stringify({ type: "module" })}\n`)
console.log(`built ${outDir}/main.js`)
