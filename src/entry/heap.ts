/**
 * V8 heap sizing for the gateway process, set by src/main.ts once the
 * gateway's modules are loaded. It imports only node:v8, so the entry stays
 * small.
 *
 * After each full GC, V8 lets the old generation grow to its size times a
 * factor, plus the young generation's capacity, before the next full GC. It
 * picks the factor from how fast GC is compared to the program, up to 4 when
 * the heap limit is large (on a 24 GiB machine the limit is 4.2 GB). After a
 * burst of turns the gateway then holds up to four times its live heap, and
 * V8 keeps the pages it freed for reuse until a memory-reducing GC, which
 * its memory reducer starts only after about 100 s without a full GC.
 * 1.3 is the factor V8 itself uses when it optimizes for memory (its
 * kConservativeGrowingFactor, for background tabs and memory-saver mode). See
 * bench/RESULTS.md for the resident memory after 10,000 turns and the CPU per
 * turn with and without it.
 */
import * as v8 from "node:v8"

/** The old generation may grow by 30% of what the last full GC kept (plus the young generation) before the next one. */
export const HEAP_GROWING_PERCENT = 30

/**
 * The young generation keeps the size it has instead of doubling under a burst
 * up to its maximum (2 × 64 MiB here), which it then keeps committed and also
 * adds to the old generation's limit. Measured over 10,000 turns: about 60 MiB
 * less resident memory afterwards and no more CPU (bench/RESULTS.md).
 */
export const SEMI_SPACE_GROWTH_FACTOR = 1

const GIVEN = /^--heap[-_]growing[-_]percent(=|$)/
const GIVEN_GROWTH = /^--(semi[-_]space[-_]growth[-_]factor|max[-_]semi[-_]space[-_]size)(=|$)/

/**
 * Sets the old generation's growing factor unless the command line already
 * gave one (`node --heap-growing-percent=N dist/main.js`; 0 gives V8's own
 * choice back), and keeps the young generation from growing unless the
 * command line sizes it. True when the growing factor was set here.
 */
export const tuneHeap = (execArgv: ReadonlyArray<string> = process.execArgv): boolean => {
  // Young-generation sizing given on the command line (a growth factor or a maximum) is left as given.
  if (!execArgv.some((arg) => GIVEN_GROWTH.test(arg))) v8.setFlagsFromString(`--semi-space-growth-factor=${SEMI_SPACE_GROWTH_FACTOR}`)
  if (execArgv.some((arg) => GIVEN.test(arg))) return false
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`)
  return true
}
