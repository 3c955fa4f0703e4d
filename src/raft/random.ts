/**
 * The Random seam. The core never draws ambient randomness: every random choice
 * (election timeout jitter) comes from a generator it is given, so a seed replays.
 */
export interface Random {
  /** A float in [0, 1). */
  next(): number
  /** An integer in [0, maxExclusive). */
  int(maxExclusive: number): number
}

/**
 * A seeded generator: sfc32 (Chris Doty-Humphrey's Small Fast Counting generator,
 * public domain), seeded through splitmix32 so that nearby seeds give unrelated streams.
 */
export function seededRandom(seed: number): Random {
  let s = seed >>> 0
  const splitmix = (): number => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
  let a = splitmix()
  let b = splitmix()
  let c = splitmix()
  let d = splitmix()
  const next32 = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0
    d = (d + 1) >>> 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) >>> 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) >>> 0
    return t
  }
  for (let i = 0; i < 12; i++) next32()
  return {
    next: () => next32() / 0x1_0000_0000,
    int: (maxExclusive: number) => {
      if (!Number.isSafeInteger(maxExclusive) || maxExclusive <= 0) {
        throw new RangeError(`Random.int needs a positive integer bound, got ${maxExclusive}.`)
      }
      return Math.floor((next32() / 0x1_0000_0000) * maxExclusive)
    },
  }
}
