/**
 * The config load pipeline, as small Effects that can be used one by one:
 *
 *   read file → parse (YAML/JSON, errors with line:column) → `${VAR}` substitution
 *   → Schema decode (every problem, unknown keys rejected) → env overrides → flag overrides
 *
 * Precedence is flags > env > file. Every failure is a `ConfigError` whose
 * message lists each problem on its own line as `path: message`.
 */
import { Config, Effect, Option, Redacted, Result, Schema, SchemaAST, SchemaIssue } from "effect"
import * as NodeFs from "node:fs"
import * as Path from "node:path"
import type * as Yaml from "yaml"
import { BeamclawConfig, defaultConfig, parseOptions } from "./ConfigSchema.ts"
import { errnoCode } from "../platform/Errno.ts"

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

export const ConfigIssue = Schema.Struct({
  /** Dotted path with `[i]` for list items, e.g. `agents.list[0].id`; empty for the whole file. */
  path: Schema.String,
  message: Schema.String
})
export type ConfigIssue = typeof ConfigIssue.Type

export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  file: Schema.String,
  issues: Schema.Array(ConfigIssue)
}) {
  override get message(): string {
    const count = this.issues.length
    const header = `Invalid config ${this.file} (${count} ${count === 1 ? "problem" : "problems"}):`
    return [header, ...this.issues.map((issue) => `  ${formatIssueLine(issue)}`)].join("\n")
  }
}

/** `gateway.port: expected …`, or just the message for file-level problems. */
export const formatIssueLine = (issue: ConfigIssue): string =>
  issue.path === "" ? issue.message : `${issue.path}: ${issue.message}`

/** A `config get` path that names nothing in the config. */
export class ConfigPathError extends Schema.TaggedError<ConfigPathError>()("ConfigPathError", {
  path: Schema.String,
  message: Schema.String
}) {}

// ---------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------

const PLAIN_KEY = /^[A-Za-z0-9_$-]+$/

/** `["agents", "list", 0, "id"]` → `agents.list[0].id`; odd keys are quoted: `models.providers["a.b"]`. */
export const formatPath = (segments: ReadonlyArray<PropertyKey>): string => {
  let out = ""
  for (const segment of segments) {
    if (typeof segment === "number") {
      out += `[${segment}]`
    } else {
      const key = String(segment)
      out += PLAIN_KEY.test(key) ? (out === "" ? key : `.${key}`) : `[${JSON.stringify(key)}]`
    }
  }
  return out
}

/** The inverse of `formatPath`; `undefined` when the text is not a path. */
export const parsePath = (text: string): Array<string | number> | undefined => {
  const segments: Array<string | number> = []
  let rest = text.trim()
  let first = true
  while (rest.length > 0) {
    const index = /^\[(\d+)\]/.exec(rest)
    const quoted = index === null ? /^\[("(?:[^"\\]|\\.)*")\]/.exec(rest) : null
    const plain = index === null && quoted === null ? (first ? /^([^.[\]]+)/ : /^\.([^.[\]]+)/).exec(rest) : null
    if (index !== null && index[1] !== undefined) {
      segments.push(Number(index[1]))
      rest = rest.slice(index[0].length)
    } else if (quoted !== null && quoted[1] !== undefined) {
      const key: unknown = JSON.parse(quoted[1])
      if (typeof key !== "string") return undefined
      segments.push(key)
      rest = rest.slice(quoted[0].length)
    } else if (plain !== null && plain[1] !== undefined) {
      segments.push(plain[1])
      rest = rest.slice(plain[0].length)
    } else {
      return undefined
    }
    first = false
  }
  return segments
}

// ---------------------------------------------------------------------------
// Schema issues → `{path, message}`
// ---------------------------------------------------------------------------

const SECRET_KEYS = new Set(["token", "password", "apiKey"])

/** A secret's place: its key, or anything under a provider's `headers` (an Authorization goes there). */
const isSecretPath = (path: ReadonlyArray<PropertyKey>): boolean => {
  const last = path[path.length - 1]
  return (typeof last === "string" && SECRET_KEYS.has(last)) || path.includes("headers")
}

const describeValue = (value: unknown, path: ReadonlyArray<PropertyKey>): string => {
  if (value === undefined) return "nothing"
  // A wrong-typed secret is still a secret: name its type, not its value.
  if (isSecretPath(path) && value !== "") {
    return value === null ? "null" : `a ${Array.isArray(value) ? "list" : typeof value}`
  }
  const json = JSON.stringify(value)
  if (json === undefined) return String(value)
  return json.length > 80 ? `${json.slice(0, 77)}...` : json
}

const expectedOf = (annotations: { readonly [key: string]: unknown } | undefined): string | undefined => {
  const expected = annotations?.["expected"]
  return typeof expected === "string" ? expected : undefined
}

/** What a schema wants, in words: `an integer 1..65535`, `one of "a", "b"`, `a string`. */
export const describeAst = (ast: SchemaAST.AST): string => {
  const annotated = expectedOf(ast.annotations)
  if (annotated !== undefined) return annotated
  const fromChecks = (ast.checks ?? []).flatMap((check) => {
    const expected = expectedOf(check.annotations)
    return expected === undefined ? [] : [expected]
  })
  if (fromChecks.length > 0) return fromChecks.join(" and ")
  switch (ast._tag) {
    case "String":
      return "a string"
    case "Number":
      return "a number"
    case "Boolean":
      return "true or false"
    case "Null":
      return "null"
    case "Literal":
      return JSON.stringify(ast.literal)
    case "Arrays":
      return "a list"
    case "Objects":
      return "a mapping"
    case "Union": {
      const literals = ast.types.flatMap((member) => (SchemaAST.isLiteral(member) ? [member.literal] : []))
      if (literals.length === ast.types.length) {
        return `one of ${literals.map((literal) => JSON.stringify(literal)).join(", ")}`
      }
      return ast.types.map(describeAst).join(" or ")
    }
    case "Declaration":
      return "a value"
    case "Suspend":
      return describeAst(ast.thunk())
    default:
      return ast._tag.toLowerCase()
  }
}

/** Edit distance counting a swap of neighbours as one edit (`prot` → `port`), for "did you mean". */
const editDistance = (a: string, b: string): number => {
  const x = a.toLowerCase()
  const y = b.toLowerCase()
  const d: Array<Array<number>> = Array.from({ length: x.length + 1 }, (_, i) =>
    Array.from({ length: y.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  const at = (i: number, j: number): number => d[i]?.[j] ?? Number.POSITIVE_INFINITY
  for (let i = 1; i <= x.length; i++) {
    for (let j = 1; j <= y.length; j++) {
      const cost = x[i - 1] === y[j - 1] ? 0 : 1
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost)
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1)
      const row = d[i]
      if (row !== undefined) row[j] = best
    }
  }
  return at(x.length, y.length)
}

const unknownKeyMessage = (ast: SchemaAST.AST, key: PropertyKey | undefined): string => {
  const allowed = SchemaAST.isObjects(ast)
    ? ast.propertySignatures.map((signature) => String(signature.name))
    : []
  if (allowed.length === 0) return "unknown key"
  const name = String(key)
  const best = allowed
    .map((candidate) => ({ candidate, distance: editDistance(name, candidate) }))
    .sort((a, b) => a.distance - b.distance)[0]
  const hint = best !== undefined && best.distance <= Math.max(1, Math.floor(name.length / 3))
    ? ` (did you mean \`${best.candidate}\`?)`
    : ""
  return `unknown key${hint}; allowed keys: ${[...allowed].sort().join(", ")}`
}

const inputOf = (issue: SchemaIssue.Issue): Option.Option<unknown> =>
  SchemaIssue.hasInput(issue) ? Option.some(issue.input) : Option.none()

const got = (issue: SchemaIssue.Issue, path: ReadonlyArray<PropertyKey>): string =>
  Option.match(inputOf(issue), {
    onNone: () => "",
    onSome: (input) => `, got ${describeValue(input, path)}`
  })

/** Flattens a Schema issue tree into one `{path, message}` per problem, in a human voice. */
export const issuesFromSchema = (
  issue: SchemaIssue.Issue,
  prefix: ReadonlyArray<PropertyKey> = []
): Array<ConfigIssue> => {
  const out: Array<ConfigIssue> = []
  const walk = (node: SchemaIssue.Issue, path: ReadonlyArray<PropertyKey>): void => {
    const emit = (message: string): void => {
      out.push({ path: formatPath(path), message })
    }
    switch (node._tag) {
      case "Pointer":
        return walk(node.issue, [...path, ...node.path])
      case "Encoding":
        return walk(node.issue, path)
      case "Composite":
        return node.issues.forEach((child) => walk(child, path))
      case "AnyOf":
        // With member issues the input had the right shape for some member: report what is wrong inside it.
        if (node.issues.length > 0) return node.issues.forEach((child) => walk(child, path))
        return emit(`expected ${describeAst(node.ast)}${got(node, path)}`)
      case "Filter": {
        const inner = node.issue
        const message = inner._tag === "InvalidValue" && typeof inner.annotations?.message === "string"
          ? inner.annotations.message
          : typeof node.filter.annotations?.message === "string"
          ? node.filter.annotations.message
          : undefined
        if (message !== undefined) return emit(message)
        const expected = expectedOf(node.filter.annotations)
        if (expected === undefined) return walk(inner, path)
        return emit(`expected ${expected}${got(node, path)}`)
      }
      case "InvalidType":
        return emit(`expected ${describeAst(node.ast)}${got(node, path)}`)
      case "InvalidValue": {
        const message = node.annotations?.message
        if (typeof message === "string") return emit(message)
        const expected = expectedOf(node.annotations)
        return emit(expected !== undefined ? `expected ${expected}${got(node, path)}` : `invalid value${got(node, path)}`)
      }
      case "MissingKey":
        return emit("missing required key")
      case "UnexpectedKey":
        return emit(unknownKeyMessage(node.ast, path[path.length - 1]))
      case "Forbidden":
        return emit(typeof node.annotations?.message === "string" ? node.annotations.message : "not allowed")
      case "OneOf":
        return emit(`matches more than one alternative${got(node, path)}`)
    }
  }
  walk(issue, prefix)
  return out
}

// ---------------------------------------------------------------------------
// Read and parse
// ---------------------------------------------------------------------------

const fileProblem = (file: string, message: string) => new ConfigError({ file, issues: [{ path: "", message }] })

/**
 * The file's text, or `None` when it does not exist (a missing config means
 * defaults). Read synchronously: it is one small file, read before anything
 * else can run at start, where a trip through the thread pool only waits.
 */
export const readConfigText = Effect.fn("ConfigLoader.readConfigText")(function*(file: string) {
  return yield* Effect.try({
    try: () => NodeFs.readFileSync(file, "utf8"),
    catch: (cause) => cause
  }).pipe(
    Effect.map(Option.some),
    Effect.catch((cause) =>
      errnoCode(cause) === "ENOENT"
        ? Effect.succeed(Option.none<string>())
        : Effect.fail(fileProblem(file, `cannot read the config file: ${cause instanceof Error ? cause.message : String(cause)}`))
    )
  )
})

const lineColumnAt = (text: string, offset: number): { line: number; column: number } => {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)))
  const lines = before.split("\n")
  return { line: lines.length, column: (lines[lines.length - 1]?.length ?? 0) + 1 }
}

const parseJson = (text: string, file: string): Result.Result<unknown, ConfigError> => {
  // A byte-order mark (some Windows editors write one) is not part of the JSON; YAML skips it too.
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
  try {
    const parsed: unknown = JSON.parse(body)
    return Result.succeed(parsed)
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause)
    const explicit = /line (\d+) column (\d+)/.exec(message)
    const position = /position (\d+)/.exec(message)
    const where = explicit !== null
      ? { line: Number(explicit[1]), column: Number(explicit[2]) }
      : position !== null
      ? lineColumnAt(body, Number(position[1]))
      : undefined
    // V8 quotes the text around the error (`Unexpected token 's', "{"token": sk-li"... is not valid JSON`): that
    // text may be a secret, so only the kind of error is kept.
    const reason = message
      .replace(/\s*\(line \d+ column \d+\)/, "")
      .replace(/ in JSON at position \d+/, "")
      .replace(/^(Unexpected token) '.*?', .* is not valid JSON$/s, "$1")
      .replace(/, (\.\.\.)?".*" is not valid JSON$/s, "")
    return Result.fail(
      fileProblem(file, where === undefined
        ? `JSON syntax error: ${reason} (check the quotes and commas; strings such as tokens need double quotes)`
        : `JSON syntax error at line ${where.line}, column ${where.column}: ${reason}`)
    )
  }
}

/** The YAML parser, loaded by the first YAML text to parse: a start without a config file parses none. */
const loadYaml = (file: string): Effect.Effect<typeof Yaml, ConfigError> =>
  Effect.tryPromise({
    try: () => import("yaml"),
    catch: (cause) => fileProblem(file, `cannot load the YAML parser: ${cause instanceof Error ? cause.message : String(cause)}`)
  })

const parseYaml = (yaml: typeof Yaml, text: string, file: string): Result.Result<unknown, ConfigError> => {
  const document = yaml.parseDocument(text, { prettyErrors: true, uniqueKeys: true, intAsBigInt: true })
  if (document.errors.length > 0) {
    return Result.fail(
      new ConfigError({
        file,
        issues: document.errors.map((error) => {
          const start = error.linePos?.[0]
          const where = start !== undefined ? `line ${start.line}, column ${start.col}` : "unknown position"
          const reason = error.message.split("\n")[0]?.replace(/ at line \d+, column \d+:?$/, "") ?? error.message
          return { path: "", message: `YAML syntax error at ${where}: ${reason}` }
        })
      })
    )
  }
  return Result.succeed(unBigInt(document.toJS({ maxAliasCount: 1000 })))
}

/**
 * YAML is parsed with integers as bigint so Discord snowflakes survive as map
 * keys (`987654321098765432:` would otherwise round to `...400`). Back to
 * numbers where exact; digits (a string) where not, so an id written unquoted
 * in a list still reads right.
 */
const unBigInt = (value: unknown): unknown => {
  if (typeof value === "bigint") {
    const asNumber = Number(value)
    return Number.isSafeInteger(asNumber) ? asNumber : value.toString()
  }
  if (Array.isArray(value)) return value.map(unBigInt)
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, unBigInt(item)]))
  }
  return value
}

/**
 * Parses by extension: `.json` with JSON.parse, everything else as YAML (a
 * superset of JSON, so JSON in a `.yaml` file works). An empty document is `{}`.
 */
export const parseConfigText = (text: string, file: string): Effect.Effect<unknown, ConfigError> => {
  if (Path.extname(file).toLowerCase() === ".json") return checkTopLevel(parseJson(text, file), file)
  // What YAML makes of a blank document (null, so `{}`), without loading it: the usual start has no file.
  if (text.trim() === "") return Effect.succeed({})
  return Effect.flatMap(loadYaml(file), (yaml) => checkTopLevel(parseYaml(yaml, text, file), file))
}

const checkTopLevel = (parsed: Result.Result<unknown, ConfigError>, file: string): Effect.Effect<unknown, ConfigError> =>
  Result.match(parsed, {
    onFailure: Effect.fail,
    onSuccess: (value) => {
      if (value === null || value === undefined) return Effect.succeed({})
      if (typeof value !== "object" || Array.isArray(value)) {
        return Effect.fail(
          fileProblem(file, `expected a mapping of settings at the top level, got ${describeValue(value, [])}`)
        )
      }
      return Effect.succeed(value)
    }
  })

// ---------------------------------------------------------------------------
// ${VAR} substitution
// ---------------------------------------------------------------------------

// `$${VAR}` (escape) or `${VAR}`; names are upper-case only, as in OpenClaw.
const VAR_PATTERN = /\$(\$)?\{([A-Z_][A-Z0-9_]*)\}/g

const collectVarNames = (value: unknown, into: Set<string>): void => {
  if (typeof value === "string") {
    for (const match of value.matchAll(VAR_PATTERN)) {
      if (match[1] === undefined && match[2] !== undefined) into.add(match[2])
    }
  } else if (Array.isArray(value)) {
    value.forEach((item) => collectVarNames(item, into))
  } else if (typeof value === "object" && value !== null) {
    Object.values(value).forEach((item) => collectVarNames(item, into))
  }
}

/**
 * Replaces `${VAR}` in every string value (keys are left alone). `$${VAR}` is
 * the literal `${VAR}`. A missing or empty variable is an issue naming the
 * variable and the config path that referenced it; all of them are reported.
 */
export const substituteEnvVars = (
  value: unknown,
  lookup: (name: string) => string | undefined
): Result.Result<unknown, Array<ConfigIssue>> => {
  const issues: Array<ConfigIssue> = []
  const walk = (node: unknown, path: ReadonlyArray<PropertyKey>): unknown => {
    if (typeof node === "string") {
      return node.replace(VAR_PATTERN, (whole, escape: string | undefined, name: string) => {
        if (escape !== undefined) return whole.slice(1)
        const resolved = lookup(name)
        if (resolved === undefined || resolved === "") {
          issues.push({
            path: formatPath(path),
            message: `missing env var "${name}" (referenced as \${${name}}; set it or escape it as $\${${name}})`
          })
          return whole
        }
        return resolved
      })
    }
    if (Array.isArray(node)) return node.map((item, index) => walk(item, [...path, index]))
    if (typeof node === "object" && node !== null) {
      return Object.fromEntries(Object.entries(node).map(([key, item]) => [key, walk(item, [...path, key])]))
    }
    return node
  }
  const result = walk(value, [])
  return issues.length > 0 ? Result.fail(issues) : Result.succeed(result)
}

/** Reads one variable through the active `ConfigProvider` (the process env unless a test provides one). */
const lookupEnv = (name: string): Effect.Effect<string | undefined> =>
  Config.option(Config.String(name)).pipe(
    Effect.map((value) => Option.getOrUndefined(value)),
    Effect.orElseSucceed(() => undefined)
  )

/** `substituteEnvVars` with variables from the active `ConfigProvider`. */
export const resolveEnvVars = Effect.fn("ConfigLoader.resolveEnvVars")(function*(raw: unknown, file: string) {
  const names = new Set<string>()
  collectVarNames(raw, names)
  const values = new Map<string, string>()
  for (const name of names) {
    const value = yield* lookupEnv(name)
    if (value !== undefined) values.set(name, value)
  }
  return yield* Result.match(substituteEnvVars(raw, (name) => values.get(name)), {
    onFailure: (issues) => Effect.fail(new ConfigError({ file, issues })),
    onSuccess: (value) => Effect.succeed(value)
  })
})

// ---------------------------------------------------------------------------
// Decode
// ---------------------------------------------------------------------------

/** Decodes an already parsed (and substituted) value, reporting every problem. */
export const decodeConfig = (raw: unknown, file: string): Effect.Effect<BeamclawConfig, ConfigError> =>
  Result.match(Schema.decodeUnknownResult(BeamclawConfig, parseOptions)(raw), {
    onSuccess: Effect.succeed,
    onFailure: (error) => Effect.fail(new ConfigError({ file, issues: issuesFromSchema(error.issue) }))
  })

/** Parse + substitute + decode a config text (no file access; for tests and `config validate`). */
export const decodeConfigText = Effect.fn("ConfigLoader.decodeConfigText")(function*(text: string, file: string) {
  const parsed = yield* parseConfigText(text, file)
  const substituted = yield* resolveEnvVars(parsed, file)
  return yield* decodeConfig(substituted, file).pipe(Effect.mapError((error) => hideEnvValues(error, parsed)))
})

/**
 * A value that came from `${VAR}` is often a secret in a place the schema
 * does not know as one (`other: ${OTHER_KEY}`, a header): a problem with it
 * names the variable, never the value.
 */
const hideEnvValues = (error: ConfigError, raw: unknown): ConfigError => {
  const references = new Map<string, string>()
  const collect = (node: unknown, path: ReadonlyArray<PropertyKey>): void => {
    if (typeof node === "string" && node.includes("${")) references.set(formatPath(path), node)
    else if (Array.isArray(node)) node.forEach((item, index) => collect(item, [...path, index]))
    else if (typeof node === "object" && node !== null) for (const [key, item] of Object.entries(node)) collect(item, [...path, key])
  }
  collect(raw, [])
  if (references.size === 0) return error
  return new ConfigError({
    file: error.file,
    issues: error.issues.map((issue) => {
      const written = references.get(issue.path)
      const at = issue.message.indexOf(", got ")
      return written === undefined || at < 0 ? issue : { ...issue, message: `${issue.message.slice(0, at)}, got the value of ${written} (not shown)` }
    })
  })
}

export interface MissingFileOptions {
  /**
   * What named the file explicitly (`"BEAMCLAW_CONFIG"`, i.e. `Paths.configFileSetBy`).
   * When set, a missing file is a `ConfigError` naming the file and this.
   */
  readonly setBy?: string | undefined
  /** A missing file is a `ConfigError` even without `setBy` (a reload must not reset to the defaults). */
  readonly mustExist?: boolean | undefined
}

/** The `ConfigError` for a config file that does not exist where it must. */
export const missingFileError = (file: string, setBy?: string | undefined): ConfigError =>
  fileProblem(file, `config file ${file} does not exist${setBy !== undefined ? ` (set by ${setBy})` : ""}`)

/**
 * Reads and decodes a config file. A missing file decodes to the defaults,
 * unless it was named explicitly (`setBy`) or `mustExist`. Overrides are not applied.
 */
export const loadConfigFile = Effect.fn("ConfigLoader.loadConfigFile")(
  function*(file: string, options: MissingFileOptions = {}) {
    const text = yield* readConfigText(file)
    if (Option.isNone(text)) {
      if (options.setBy !== undefined || options.mustExist === true) return yield* missingFileError(file, options.setBy)
      // The defaults, which is what an empty file decodes to (the usual first start has no file).
      return defaultConfig
    }
    // An emptied file while running is an editor mid-save (truncate, then write) far more often than a wish for
    // every default: a reload keeps the config it has, as for a deleted file.
    if (options.mustExist === true && text.value.trim() === "") return yield* fileProblem(file, `config file ${file} is empty; the current config stays until it has content`)
    return yield* decodeConfigText(text.value, file)
  }
)

// ---------------------------------------------------------------------------
// Overrides: flags > env > file
// ---------------------------------------------------------------------------

export interface ConfigOverrides {
  readonly port?: number | undefined
  readonly token?: string | Redacted.Redacted<string> | undefined
}

const PORT_EXPECTED = "an integer 1..65535"
const isPort = (port: number) => Number.isInteger(port) && port >= 1 && port <= 65535

/**
 * `BEAMCLAW_PORT` and `BEAMCLAW_GATEWAY_TOKEN` from the active `ConfigProvider`.
 * A bad port is a `ConfigError` whose path is `BEAMCLAW_PORT`.
 */
export const readEnvOverrides: Effect.Effect<ConfigOverrides, ConfigError> = Effect.gen(function*() {
  const portText = yield* lookupEnv("BEAMCLAW_PORT")
  const token = yield* lookupEnv("BEAMCLAW_GATEWAY_TOKEN")
  let port: number | undefined
  if (portText !== undefined && portText.trim() !== "") {
    const parsed = Number(portText.trim())
    if (!/^\d+$/.test(portText.trim()) || !isPort(parsed)) {
      return yield* new ConfigError({
        file: "environment",
        issues: [{ path: "BEAMCLAW_PORT", message: `expected ${PORT_EXPECTED}, got ${JSON.stringify(portText)}` }]
      })
    }
    port = parsed
  }
  return {
    ...(port !== undefined ? { port } : {}),
    ...(token !== undefined && token !== "" ? { token: Redacted.make(token) } : {})
  }
}).pipe(Effect.withSpan("ConfigLoader.readEnvOverrides"))

/** Applies overrides on top of a decoded config. A bad `--port` is a `ConfigError` at path `--port`. */
export const applyOverrides = (
  config: BeamclawConfig,
  overrides: ConfigOverrides,
  source = "command line"
): Effect.Effect<BeamclawConfig, ConfigError> => {
  const { port, token } = overrides
  if (port !== undefined && !isPort(port)) {
    return Effect.fail(
      new ConfigError({
        file: source,
        issues: [{ path: "--port", message: `expected ${PORT_EXPECTED}, got ${describeValue(port, [])}` }]
      })
    )
  }
  const gateway = {
    ...config.gateway,
    ...(port !== undefined ? { port } : {}),
    auth: {
      ...config.gateway.auth,
      ...(token !== undefined ? { token: Redacted.isRedacted(token) ? token : Redacted.make(token) } : {})
    }
  }
  return Effect.succeed({ ...config, gateway })
}

export interface LoadOptions extends MissingFileOptions {
  readonly file: string
  /** Command-line flags; they win over env and file. */
  readonly flags?: ConfigOverrides | undefined
}

/**
 * The whole pipeline: file (or defaults) → env overrides → flag overrides.
 * Pass `setBy: paths.configFileSetBy` so an explicitly named file that is missing fails.
 */
export const loadConfig = Effect.fn("ConfigLoader.loadConfig")(function*(options: LoadOptions) {
  const fromFile = yield* loadConfigFile(options.file, { setBy: options.setBy, mustExist: options.mustExist })
  const env = yield* readEnvOverrides
  const withEnv = yield* applyOverrides(fromFile, env, "environment")
  return yield* applyOverrides(withEnv, options.flags ?? {})
})

// ---------------------------------------------------------------------------
// Output: encode, get, render, diff
// ---------------------------------------------------------------------------

export const REDACTED_TEXT = "<redacted>"

const redactSecrets = (value: unknown): unknown => {
  if (Redacted.isRedacted(value)) return Redacted.make(REDACTED_TEXT)
  if (Array.isArray(value)) return value.map(redactSecrets)
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, redactSecrets(item)]))
  }
  return value
}

// Made on first use: making it walks the whole schema, which a start without a config file never needs.
let encodeUnknown: ((input: unknown) => unknown) | undefined

/**
 * The config in file form (plain JSON-able data, models normalised to
 * `{primary, fallbacks}`). Secrets read `<redacted>` unless `revealSecrets`.
 */
export const encodeConfig = (
  config: BeamclawConfig,
  options?: { readonly revealSecrets?: boolean | undefined }
): BeamclawConfigEncodedValue =>
  toPlain((encodeUnknown ??= Schema.encodeUnknownSync(BeamclawConfig))(options?.revealSecrets === true ? config : redactSecrets(config)))

/** JSON-shaped data, as `encodeConfig` returns it. */
export type BeamclawConfigEncodedValue = { readonly [key: string]: PlainValue }
export type PlainValue =
  | string
  | number
  | boolean
  | null
  | ReadonlyArray<PlainValue>
  | { readonly [key: string]: PlainValue }

const toPlainValue = (value: unknown): PlainValue => {
  if (value === null || typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
    return value
  }
  if (Array.isArray(value)) return value.map(toPlainValue)
  if (typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).flatMap(([key, item]) => (item === undefined ? [] : [[key, toPlainValue(item)]]))
    )
  }
  return String(value)
}

const toPlain = (value: unknown): BeamclawConfigEncodedValue => {
  const plain = toPlainValue(value)
  return typeof plain === "object" && plain !== null && !isPlainList(plain) ? plain : {}
}

const isPlainList = (value: PlainValue): value is ReadonlyArray<PlainValue> => Array.isArray(value)

const childValue = (value: PlainValue | undefined, segment: string | number): PlainValue | undefined => {
  if (value === undefined || value === null || typeof value !== "object") return undefined
  if (isPlainList(value)) return typeof segment === "number" ? value[segment] : undefined
  return typeof segment === "string" && Object.hasOwn(value, segment) ? value[segment] : undefined
}

/** The declared property names under an (encoded) schema node, following unions and index signatures. */
const schemaChild = (ast: SchemaAST.AST, segment: string | number): SchemaAST.AST | undefined => {
  const encoded = SchemaAST.toEncoded(ast)
  switch (encoded._tag) {
    // The config's sections are built on first use (ConfigSchema.ts).
    case "Suspend":
      return schemaChild(encoded.thunk(), segment)
    case "Objects": {
      const property = encoded.propertySignatures.find((signature) => signature.name === segment)
      if (property !== undefined) return property.type
      return encoded.indexSignatures.length > 0 && typeof segment === "string" ? encoded.indexSignatures[0]?.type : undefined
    }
    case "Arrays":
      return typeof segment === "number" ? encoded.rest[0] ?? encoded.elements[segment] : undefined
    case "Union":
      for (const member of encoded.types) {
        const child = schemaChild(member, segment)
        if (child !== undefined) return child
      }
      return undefined
    case "Unknown":
    case "Any":
      return encoded
    default:
      return undefined
  }
}

const childKeys = (ast: SchemaAST.AST | undefined): Array<string> => {
  if (ast === undefined) return []
  const encoded = SchemaAST.toEncoded(ast)
  if (SchemaAST.isSuspend(encoded)) return childKeys(encoded.thunk())
  if (SchemaAST.isObjects(encoded)) return encoded.propertySignatures.map((signature) => String(signature.name))
  if (SchemaAST.isUnion(encoded)) return encoded.types.flatMap(childKeys)
  return []
}

/**
 * The value at a dotted path (`gateway.port`, `agents.list[0].id`,
 * `models.providers["my.host"]`), in encoded form with secrets redacted
 * unless `revealSecrets`. A key the schema declares but the config leaves
 * unset gives `undefined`; a key the schema does not know is a `ConfigPathError`.
 */
export const getPath = (
  config: BeamclawConfig,
  path: string,
  options?: { readonly revealSecrets?: boolean | undefined }
): Effect.Effect<PlainValue | undefined, ConfigPathError> => {
  const segments = parsePath(path)
  if (segments === undefined) {
    return Effect.fail(new ConfigPathError({ path, message: `not a config path: \`${path}\`` }))
  }
  let value: PlainValue | undefined = encodeConfig(config, options)
  let ast: SchemaAST.AST | undefined = BeamclawConfig.ast
  for (const [index, segment] of segments.entries()) {
    const parentAst: SchemaAST.AST | undefined = ast
    ast = ast === undefined ? undefined : schemaChild(ast, segment)
    const where = formatPath(segments.slice(0, index + 1))
    if (ast === undefined) {
      const known = childKeys(parentAst)
      return Effect.fail(
        new ConfigPathError({
          path,
          message: `unknown config path \`${where}\`${known.length > 0 ? `; keys there: ${known.sort().join(", ")}` : ""}`
        })
      )
    }
    value = childValue(value, segment)
  }
  return Effect.succeed(value)
}

// YAML output lives in its own module. Importing it from there rather than through this
// re-export keeps the YAML library out of what the gateway loads at start (this module
// loads at every start); while anything imports it from here, the library comes along.

const leafDiff = (a: unknown, b: unknown, path: ReadonlyArray<PropertyKey>, out: Array<string>): void => {
  const isObject = (v: unknown): v is { readonly [key: string]: unknown } =>
    typeof v === "object" && v !== null && !Array.isArray(v)
  if (isObject(a) && isObject(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)])
    for (const key of [...keys].sort()) leafDiff(a[key], b[key], [...path, key], out)
    return
  }
  // Arrays are compared whole and reported at their own path, as OpenClaw's reload planner does.
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push(formatPath(path))
}

/** The leaf paths whose values differ (secrets compared by value, reported by path only). */
export const diffConfig = (before: BeamclawConfig, after: BeamclawConfig): Array<string> => {
  const out: Array<string> = []
  leafDiff(encodeConfig(before, { revealSecrets: true }), encodeConfig(after, { revealSecrets: true }), [], out)
  return out
}

/** Structural equality for configs or parts of them (`Redacted` compared by value). */
export const configEquals = (a: unknown, b: unknown): boolean => {
  if (Object.is(a, b)) return true
  if (Redacted.isRedacted(a) && Redacted.isRedacted(b)) return configEquals(Redacted.value(a), Redacted.value(b))
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, index) => configEquals(item, b[index]))
  }
  if (typeof a === "object" && a !== null && typeof b === "object" && b !== null && !Array.isArray(a) && !Array.isArray(b)) {
    const keysA = Object.keys(a).filter((key) => Reflect.get(a, key) !== undefined)
    const keysB = Object.keys(b).filter((key) => Reflect.get(b, key) !== undefined)
    return keysA.length === keysB.length &&
      keysA.every((key) => Object.hasOwn(b, key) && configEquals(Reflect.get(a, key), Reflect.get(b, key)))
  }
  return false
}
