/**
 * The transcripts of the floors (bench/proxy-floor.ts, bench/stack-floor.ts):
 * one file per `user` in `dir`, opened for appends on its first line and kept
 * open, as the gateway keeps an active session's transcript.
 */
import * as fs from "node:fs"
import * as path from "node:path"

export const transcriptFiles = (dir: string): (user: string) => number => {
  const transcripts = new Map<string, number>()
  return (user) => {
    let fd = transcripts.get(user)
    if (fd === undefined) {
      fd = fs.openSync(path.join(dir, `${encodeURIComponent(user)}.jsonl`), "a", 0o600)
      transcripts.set(user, fd)
    }
    return fd
  }
}
