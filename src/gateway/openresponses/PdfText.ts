/**
 * Reads a PDF's text in a worker thread of its own (PdfWorker.ts), over
 * effect/rpc: PDF.js parses on the thread that calls it, and a 5 MB PDF takes
 * about half a second of it (a hostile one far more), which on the gateway's
 * thread would stall every session, socket and channel meanwhile. The worker
 * has its own heap cap, a cap on its array buffers and a deadline; when one
 * is passed, or the caller is interrupted, the worker is terminated there
 * and then.
 */
import * as os from "node:os"
import { Worker } from "node:worker_threads"
import { NodeWorker } from "@effect/platform-node"
import { Duration, Effect, Layer, Predicate, Schema, Semaphore } from "effect"
import { RpcClient, type RpcClientError } from "effect/rpc"
import { errnoCode } from "../../platform/Errno.ts"
import { PdfRpcs } from "./PdfRpcs.ts"

export class PdfNotRead extends Schema.TaggedError<PdfNotRead>()("PdfNotRead", {
  message: Schema.String
}) {}

/**
 * At most one PDF read per core at a time, process-wide: each worker is a
 * thread and a heap of its own, and requests full of PDFs must not multiply
 * them without bound. The others wait their turn (their deadline starts then).
 */
const readers = Semaphore.makeUnsafe(os.availableParallelism())

/** Plenty for the text of a few pages; a PDF that needs more is refused rather than growing the gateway. */
const WORKER_HEAP_MB = 256
/**
 * The same for the worker's array buffers, which the heap cap does not
 * count: PDF.js inflates each stream into one, and a stream of compressed
 * blank space inflates a thousandfold (a 1 MB PDF grew the process by 3.5 GB).
 */
const WORKER_BUFFERS_MB = 256
/** How often the worker's buffers are measured: an inflating stream gains a few tens of MB in this time. */
const MEMORY_CHECK = Duration.millis(25)
export const PDF_TIMEOUT = Duration.seconds(20)

const tooBig = (megabytes: number) => new PdfNotRead({ message: `reading it needs more than ${megabytes} MB of memory` })

/**
 * The worker's entry: next to the gateway's bundle (dist/pdf-worker.js, one
 * level above the chunk this code is in), or the source file when running
 * from source (tests), which Node runs as TypeScript.
 */
const workerEntry = (): URL =>
  import.meta.url.endsWith(".ts") ? new URL("./PdfWorker.ts", import.meta.url) : new URL("../pdf-worker.js", import.meta.url)

/**
 * One read in a worker of its own. The worker is terminated as soon as the
 * read ends, however it ends: the platform's own finalizer asks it to close
 * and waits up to 5 s for that, but a worker inside one long PDF.js call
 * (a content stream of a million text runs) does not hear the request, and
 * would run on past the deadline, holding its core, memory and permit.
 */
const readInWorker = (bytes: Uint8Array, maxPages: number) =>
  Effect.suspend(() => {
    let worker: Worker | undefined
    const workerLayer = RpcClient.layerProtocolWorker({ size: 1 }).pipe(
      Layer.provide(NodeWorker.layer(() => {
        worker = new Worker(workerEntry(), { resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } })
        return worker
      }))
    )
    // Measured from this thread: the worker may be deep in one synchronous inflate, where no timer of its own would fire.
    const buffersWatch: Effect.Effect<never, PdfNotRead> = Effect.gen(function*() {
      while (true) {
        yield* Effect.sleep(MEMORY_CHECK)
        const current = worker
        if (current === undefined) continue
        // A worker that is gone (ERR_WORKER_NOT_RUNNING) is the RPC's to report.
        const stats = yield* Effect.promise(() => current.getHeapStatistics().catch(() => undefined))
        // Failing ends the race at once, and the read's end terminates the worker; terminating it here first
        // would let its exit reach the RPC first, as a worker that merely stopped.
        if (stats !== undefined && stats.external_memory > WORKER_BUFFERS_MB * 1024 * 1024) return yield* tooBig(WORKER_BUFFERS_MB)
      }
    })
    return Effect.gen(function*() {
      const client = yield* RpcClient.make(PdfRpcs)
      return yield* Effect.raceFirst(client.ExtractText({ bytes, maxPages }), buffersWatch)
    }).pipe(
      Effect.ensuring(Effect.promise(async () => {
        await worker?.terminate()
      })),
      Effect.provide(workerLayer),
      Effect.scoped
    )
  })

/** V8 stopped the worker at its heap cap. */
const outOfMemory = (error: RpcClientError.RpcClientError): boolean =>
  Predicate.hasProperty(error.reason, "cause") && errnoCode(error.reason.cause) === "ERR_WORKER_OUT_OF_MEMORY"

/** The text of the first `maxPages` pages and the page count, or why not. */
export const extractPdfText = (bytes: Uint8Array, maxPages: number, timeout: Duration.Duration = PDF_TIMEOUT) =>
  readInWorker(bytes, maxPages).pipe(
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.fail(new PdfNotRead({ message: `reading it took longer than ${Duration.format(timeout)}` }))
    }),
    Semaphore.withPermit(readers),
    Effect.catchTags({
      PdfUnreadable: (error) => Effect.fail(new PdfNotRead({ message: error.message })),
      WorkerError: (error) => Effect.fail(new PdfNotRead({ message: `the PDF reader stopped (${error.message})` })),
      RpcClientError: (error) => Effect.fail(outOfMemory(error) ? tooBig(WORKER_HEAP_MB) : new PdfNotRead({ message: `the PDF reader stopped (${error.message})` }))
    })
  )
