// Builds the `beamclaw/client` package entry: dist/client.js (ESM, with
// effect and @effect/platform-node left as imports, so a program and the
// client share one copy of Effect) and its declarations in dist/types.
// The gateway bundle (scripts/build.ts) is separate: run this after it, since
// that script empties the output directory.
import { execFileSync } from "node:child_process"
import { readdir, readFile, rm, writeFile } from "node:fs/promises"
import { builtinModules } from "node:module"
import * as path from "node:path"
import { build } from "rolldown"

const outDir = process.env["BEAMCLAW_DIST_DIR"] ?? "dist"
const typesDir = path.join(outDir, "types")

const builtins = new Set([...builtinModules, ...builtinModules.map((name) => `node:${name}`)])
const isExternal = (id: string) =>
  builtins.has(id) || id === "effect" || id.startsWith("effect/") || id === "@effect/platform-node" || id.startsWith("@effect/platform-node/")

await Promise.all([
  rm(path.join(outDir, "client.js"), { force: true }),
  rm(path.join(outDir, "client.js.map"), { force: true }),
  rm(typesDir, { recursive: true, force: true })
])

await build({
  input: { client: "src/client/index.ts" },
  platform: "node",
  external: isExternal,
  treeshake: true,
  onLog: (level, log, handler) => {
    if (log.code === "MISSING_EXPORT" || log.code === "IMPORT_IS_UNDEFINED") handler("error", log)
    else handler(level, log)
  },
  output: { dir: outDir, format: "esm", entryFileNames: "[name].js", sourcemap: true, minify: false }
})

// Declarations from the sources the client imports (the repo's tsconfig is noEmit, so the options are given here).
const tsc = path.resolve("node_modules", ".bin", process.platform === "win32" ? "tsc.cmd" : "tsc")
execFileSync(tsc, [
  "--ignoreConfig", "src/client/index.ts",
  "--declaration", "--emitDeclarationOnly", "--outDir", typesDir, "--rootDir", "src",
  "--target", "ES2023", "--lib", "ES2023", "--module", "NodeNext", "--moduleResolution", "NodeNext", "--types", "node",
  "--strict", "--exactOptionalPropertyTypes", "--skipLibCheck", "--allowImportingTsExtensions", "--verbatimModuleSyntax"
], { stdio: "inherit" })

// Declarations keep the sources' `.ts` specifiers; consumers resolve `.js` to the `.d.ts` beside it.
const relativeTs = /((?:from|import)\s*\(?\s*["'])(\.{1,2}\/[^"']+)\.ts(["'])/g
const rewrite = async (dir: string): Promise<void> => {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name)
    if (entry.isDirectory()) await rewrite(file)
    else if (entry.name.endsWith(".d.ts")) await writeFile(file, (await readFile(file, "utf8")).replace(relativeTs, "$1$2.js$3"))
  }
}
await rewrite(typesDir)
console.log(`built ${outDir}/client.js and ${typesDir}`)
