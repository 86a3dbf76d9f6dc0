/**
 * Reads a PDF's text in a worker thread of its own (PdfWorker.ts), over
 * effect/rpc: PDF.js parses on the thread that calls it, and a 5 MB PDF takes
 * about half a second of it (a hostile one far more), which on the gateway's
 * thread would stall every session, socket and channel meanwhile. The worker
 * has its own heap cap and a deadline; when either is passed, or the caller
 * is interrupted, the scope that owns the worker terminates it.
 */
import * as os from "node:os"
import { Worker } from "node:worker_threads"
import { NodeWorker } from "@effect/platform-node"
import { Duration, Effect, Layer, Schema, Semaphore } from "effect"
import { RpcClient } from "effect/rpc"
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
export const PDF_TIMEOUT = Duration.seconds(20)

/**
 * The worker's entry: next to the gateway's bundle (dist/pdf-worker.js, one
 * level above the chunk this code is in), or the source file when running
 * from source (tests), which Node runs as TypeScript.
 */
const workerEntry = (): URL =>
  import.meta.url.endsWith(".ts") ? new URL("./PdfWorker.ts", import.meta.url) : new URL("../pdf-worker.js", import.meta.url)

const workerLayer = RpcClient.layerProtocolWorker({ size: 1 }).pipe(
  Layer.provide(NodeWorker.layer(() => new Worker(workerEntry(), { resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } })))
)

/** The text of the first `maxPages` pages and the page count, or why not. */
export const extractPdfText = (bytes: Uint8Array, maxPages: number, timeout: Duration.Duration = PDF_TIMEOUT) =>
  Effect.gen(function*() {
    const client = yield* RpcClient.make(PdfRpcs)
    return yield* client.ExtractText({ bytes, maxPages })
  }).pipe(
    Effect.provide(workerLayer),
    Effect.scoped,
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.fail(new PdfNotRead({ message: `reading it took longer than ${Duration.format(timeout)}` }))
    }),
    Semaphore.withPermit(readers),
    Effect.catchTags({
      PdfUnreadable: (error) => Effect.fail(new PdfNotRead({ message: error.message })),
      WorkerError: (error) => Effect.fail(new PdfNotRead({ message: `the PDF reader stopped (${error.message})` })),
      RpcClientError: (error) => Effect.fail(new PdfNotRead({ message: `the PDF reader stopped (${error.message})` }))
    })
  )
