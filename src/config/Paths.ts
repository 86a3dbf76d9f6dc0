/**
 * Where BeamClaw keeps its state: the home directory (`BEAMCLAW_HOME`,
 * default `~/.beamclaw`), the config file, agent workspaces and session
 * transcripts. Nothing here creates directories.
 */
import { Config, Context, Effect, Layer, Option } from "effect"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import type { BeamclawConfig } from "./ConfigSchema.ts"
import { defaultAgentId, findAgent } from "./ConfigSchema.ts"

/** `~` and `~/x` → the user's home directory; everything else is resolved against the cwd. */
export const expandHome = (path: string, homeDir: string = Os.homedir()): string => {
  if (path === "~") return homeDir
  if (path.startsWith("~/") || path.startsWith("~\\")) return NodePath.join(homeDir, path.slice(2))
  return NodePath.resolve(path)
}

export interface PathsShape {
  /** The state directory, absolute. */
  readonly home: string
  /** The config file, absolute; it may not exist unless `configFileExplicit`. */
  readonly configFile: string
  /**
   * True when the config file was named explicitly (`BEAMCLAW_CONFIG`) rather
   * than found under `home`: then a missing file is an error at startup, not
   * "use the defaults", since a typo in the path must not silently drop the config.
   */
  readonly configFileExplicit: boolean
  /** What named the config file (`BEAMCLAW_CONFIG`); `undefined` for the default path. */
  readonly configFileSetBy: string | undefined
  /** `<home>/agents/<agentId>/sessions`. */
  readonly agentSessionsDir: (agentId: string) => string
  /**
   * The workspace an agent gets when the config names none:
   * `<home>/workspace` for the default agent, `<home>/workspace-<agentId>` for others.
   * `defaultAgentId` defaults to `main`; pass the config's default agent (see `resolveAgentWorkspace`).
   */
  readonly defaultWorkspace: (agentId: string, defaultAgentId?: string) => string
}

const make = (options: {
  readonly home: string
  readonly configFile: string
  readonly configFileSetBy: string | undefined
}): PathsShape => {
  const home = expandHome(options.home)
  const configFile = expandHome(options.configFile)
  return {
    home,
    configFile,
    configFileExplicit: options.configFileSetBy !== undefined,
    configFileSetBy: options.configFileSetBy,
    agentSessionsDir: (agentId) => NodePath.join(home, "agents", agentId.toLowerCase(), "sessions"),
    defaultWorkspace: (agentId, defaultAgent = "main") =>
      agentId.toLowerCase() === defaultAgent.toLowerCase()
        ? NodePath.join(home, "workspace")
        : NodePath.join(home, `workspace-${agentId.toLowerCase()}`)
  }
}

/**
 * The config file under `home`: `beamclaw.yaml`, unless only `beamclaw.json`
 * exists. When neither exists the YAML path is used (missing means defaults).
 */
export const defaultConfigFile = (home: string): string => {
  const yaml = NodePath.join(home, "beamclaw.yaml")
  const json = NodePath.join(home, "beamclaw.json")
  return !NodeFs.existsSync(yaml) && NodeFs.existsSync(json) ? json : yaml
}

export class Paths extends Context.Service<Paths, PathsShape>()("beamclaw/config/Paths") {
  /** Reads `BEAMCLAW_HOME` and `BEAMCLAW_CONFIG` through the active `ConfigProvider`. */
  static readonly layer = Layer.effect(
    Paths,
    Effect.gen(function*() {
      const home = expandHome(yield* Config.String("BEAMCLAW_HOME").pipe(Config.withDefault("~/.beamclaw")))
      // `BEAMCLAW_CONFIG=` (empty) reads as unset, as shells and compose files use it to clear a variable.
      const configOverride = Option.filter(
        yield* Config.option(Config.String("BEAMCLAW_CONFIG")),
        (file) => file.trim() !== ""
      )
      return Paths.of(Option.match(configOverride, {
        onNone: () => make({ home, configFile: defaultConfigFile(home), configFileSetBy: undefined }),
        onSome: (file) => make({ home, configFile: file, configFileSetBy: "BEAMCLAW_CONFIG" })
      }))
    })
  )

  /**
   * Fixed paths, for tests. A given `configFile` counts as explicit (named by
   * `configFileSetBy`, default `"Paths.layerFrom"`); without one the default
   * path under `home` is used and may be missing.
   */
  static readonly layerFrom = (options: {
    readonly home: string
    readonly configFile?: string | undefined
    readonly configFileSetBy?: string | undefined
  }) =>
    Layer.succeed(
      Paths,
      Paths.of(
        options.configFile === undefined
          ? make({ home: options.home, configFile: defaultConfigFile(expandHome(options.home)), configFileSetBy: undefined })
          : make({
            home: options.home,
            configFile: options.configFile,
            configFileSetBy: options.configFileSetBy ?? "Paths.layerFrom"
          })
      )
    )
}

/**
 * The workspace of an agent, absolute: its `workspace`, else for the default
 * agent `agents.defaults.workspace`, else `Paths.defaultWorkspace`.
 */
export const resolveAgentWorkspace = (paths: PathsShape, config: BeamclawConfig, agentId: string): string => {
  const own = findAgent(config, agentId)?.workspace
  if (own !== undefined) return expandHome(own)
  const defaultAgent = defaultAgentId(config)
  const isDefault = agentId.toLowerCase() === defaultAgent
  if (isDefault && config.agents.defaults.workspace !== undefined) return expandHome(config.agents.defaults.workspace)
  return paths.defaultWorkspace(agentId, defaultAgent)
}
