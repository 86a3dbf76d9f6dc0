/**
 * V8 heap sizing for the gateway process, set by src/main.ts once the
 * gateway's modules are loaded. It imports only node:v8, so the entry stays
 * small.
 *
 * The old generation keeps V8's own growing factor: a smaller one (1.3,
 * V8's factor for background tabs) kept the heap small after a burst but made
 * full GCs several times more frequent under load, and they were what stalled
 * event delivery under a burst of a thousand turns (bench/RESULTS.md). The
 * memory a burst leaves behind is given back when the gateway goes quiet
 * instead (runtime/HeapReclaim.ts).
 */
import * as v8 from "node:v8"

/**
 * The young generation keeps the size it has instead of doubling under a burst
 * up to its maximum (2 × 64 MiB here), which it then keeps committed and also
 * adds to the old generation's limit. Measured over 10,000 turns: about 60 MiB
 * less resident memory afterwards and no more CPU (bench/RESULTS.md).
 */
export const SEMI_SPACE_GROWTH_FACTOR = 1

const GIVEN_GROWTH = /^--(semi[-_]space[-_]growth[-_]factor|max[-_]semi[-_]space[-_]size)(=|$)/

/**
 * Keeps the young generation from growing unless the command line sizes it
 * (`node --max-semi-space-size=N dist/main.js`). True when it was set here.
 */
export const tuneHeap = (execArgv: ReadonlyArray<string> = process.execArgv): boolean => {
  if (execArgv.some((arg) => GIVEN_GROWTH.test(arg))) return false
  v8.setFlagsFromString(`--semi-space-growth-factor=${SEMI_SPACE_GROWTH_FACTOR}`)
  return true
}
