// Bundles src/main.ts into dist/main.js: unbundled Effect resolves thousands of
// modules at start-up and boots about four times slower.
import { rm } from "node:fs/promises"
import { builtinModules } from "node:module"
import { build } from "rolldown"

const nodeBuiltins = [...builtinModules, ...builtinModules.map((name) => `node:${name}`)]

await rm("dist", { recursive: true, force: true })
await build({
  input: { main: "src/main.ts" },
  platform: "node",
  external: nodeBuiltins,
  treeshake: true,
  output: {
    dir: "dist",
    format: "esm",
    entryFileNames: "[name].js",
    chunkFileNames: "chunks/[name]-[hash].js",
    banner: "#!/usr/bin/env node\nimport { createRequire as __beamclawCreateRequire } from \"node:module\";\nconst require = __beamclawCreateRequire(import.meta.url);",
    sourcemap: true,
    minify: false
  }
})
console.log("built dist/main.js")
