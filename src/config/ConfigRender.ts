/**
 * The config as YAML for the terminal (`config get`). Kept apart from
 * ConfigLoader (which re-exports it for existing callers) so that code
 * importing it from here, and only that code, loads the YAML library.
 */
import * as Yaml from "yaml"
import type { BeamclawConfig } from "./ConfigSchema.ts"
import { encodeConfig, type PlainValue } from "./ConfigLoader.ts"

/** The config as YAML (what `config show` prints). Secrets read `<redacted>` unless `revealSecrets`. */
export const renderYaml = (
  config: BeamclawConfig,
  options?: { readonly revealSecrets?: boolean | undefined }
): string => Yaml.stringify(encodeConfig(config, options))

/** Renders any value from `getPath` for the terminal: scalars bare, structures as YAML. */
export const renderValue = (value: PlainValue | undefined): string =>
  value === undefined
    ? "(not set)"
    : typeof value === "object" && value !== null
    ? Yaml.stringify(value).trimEnd()
    : String(value)
