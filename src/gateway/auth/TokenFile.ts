/**
 * The gateway token generated on first run when token mode has no
 * configured token: `<state>/gateway.token`, mode 0600, created exclusively
 * (two processes starting at once end up with the same token) and reused on
 * later starts. The token itself is never logged; the path is.
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Schema } from "effect"
import { isErrno } from "../../platform/Errno.ts"

export class TokenFileError extends Schema.TaggedError<TokenFileError>()("TokenFileError", {
  file: Schema.String,
  message: Schema.String
}) {}

export const tokenFile = (home: string): string => path.join(home, "gateway.token")

export interface GeneratedToken {
  readonly token: string
  readonly file: string
  /** True when this call created the file. */
  readonly created: boolean
}

const describe = (error: unknown) => error instanceof Error ? error.message : String(error)

/** 32 random bytes, base64url: 43 characters, safe in headers and URLs. */
export const generateToken = (): string => randomBytes(32).toString("base64url")

// Synchronous on purpose: a handful of tiny calls on the state directory, made once at
// start (before the listener), where each promise round trip through the thread pool
// cost more than the call itself.
const read = (file: string) =>
  Effect.try({
    try: () => {
      const fd = fs.openSync(file, "r")
      try {
        // Someone widened it (or an old copy was restored): the token is a password, keep it private.
        const widened = (fs.fstatSync(fd).mode & 0o077) !== 0
        if (widened) fs.fchmodSync(fd, 0o600)
        return { text: fs.readFileSync(fd, "utf8"), widened }
      } finally {
        fs.closeSync(fd)
      }
    },
    catch: (error) => isErrno(error, "ENOENT") ? "missing" as const : new TokenFileError({ file, message: `cannot read ${file}: ${describe(error)}` })
  })

/**
 * Writes the whole file under a temporary name, then links it into place:
 * `link` fails if the name exists, so the token file appears complete and
 * exactly once, even with two gateways racing on one state directory.
 */
const create = (home: string, file: string, token: string) =>
  Effect.try({
    try: () => {
      fs.mkdirSync(home, { recursive: true, mode: 0o700 })
      const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`
      fs.writeFileSync(temporary, `${token}\n`, { mode: 0o600, flag: "wx" })
      try {
        fs.linkSync(temporary, file)
      } finally {
        fs.rmSync(temporary, { force: true })
      }
    },
    catch: (error) => isErrno(error, "EEXIST") ? "exists" as const : new TokenFileError({ file, message: `cannot create ${file}: ${describe(error)}` })
  })

const useExisting = (file: string, text: string) => {
  const token = text.trim()
  if (token === "" || /\s/.test(token)) {
    return Effect.fail(new TokenFileError({ file, message: `${file} does not hold a token (it is empty or has spaces in it); delete it to have a new one generated, or set gateway.auth.token` }))
  }
  return Effect.succeed(token)
}

/** Reads the token file, creating it with a fresh token if it does not exist. */
export const loadOrCreate = (home: string): Effect.Effect<GeneratedToken & { readonly widened: boolean }, TokenFileError> =>
  Effect.gen(function*() {
    const file = tokenFile(home)
    const existing = yield* read(file).pipe(Effect.catch((failure) => failure === "missing" ? Effect.succeed(undefined) : Effect.fail(failure)))
    if (existing !== undefined) return { token: yield* useExisting(file, existing.text), file, created: false, widened: existing.widened }
    const token = generateToken()
    const created = yield* create(home, file, token).pipe(
      Effect.as(true),
      Effect.catch((failure) => failure === "exists" ? Effect.succeed(false) : Effect.fail(failure))
    )
    if (created) return { token, file, created: true, widened: false }
    // Another process created it between our read and our link: use theirs.
    const theirs = yield* read(file).pipe(Effect.catch((failure) =>
      Effect.fail(failure === "missing" ? new TokenFileError({ file, message: `${file} disappeared while it was being created; try again` }) : failure)
    ))
    return { token: yield* useExisting(file, theirs.text), file, created: false, widened: theirs.widened }
  })
