/**
 * The one event queue of both simulators: a binary min-heap ordered by virtual time, with
 * ties broken by insertion order. The tie-break is what makes a run replay byte for
 * byte: two events due at the same millisecond always run in the order they were
 * scheduled, never in an order that depends on heap layout.
 */
export class EventQueue<T> {
  readonly #times: number[] = []
  readonly #seqs: number[] = []
  readonly #items: T[] = []
  #nextSeq = 0

  get size(): number {
    return this.#items.length
  }

  push(atMs: number, item: T): void {
    const seq = this.#nextSeq++
    let i = this.#items.length
    this.#times.push(atMs)
    this.#seqs.push(seq)
    this.#items.push(item)
    // Sift up.
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.#less(atMs, seq, this.#times[parent]!, this.#seqs[parent]!)) break
      this.#move(parent, i)
      i = parent
    }
    this.#set(i, atMs, seq, item)
  }

  /** The time of the earliest event, or undefined when empty. */
  peekTime(): number | undefined {
    return this.#times[0]
  }

  /** Removes and returns the earliest event; throws when empty (a caller bug). */
  pop(): { readonly atMs: number; readonly item: T } {
    const n = this.#items.length
    if (n === 0) throw new Error('EventQueue.pop on an empty queue.')
    const atMs = this.#times[0]!
    const item = this.#items[0]!
    const lastTime = this.#times.pop()!
    const lastSeq = this.#seqs.pop()!
    const lastItem = this.#items.pop()!
    const size = n - 1
    if (size > 0) {
      // Sift the last element down from the root.
      let i = 0
      for (;;) {
        const left = 2 * i + 1
        if (left >= size) break
        const right = left + 1
        let child = left
        if (
          right < size &&
          this.#less(this.#times[right]!, this.#seqs[right]!, this.#times[left]!, this.#seqs[left]!)
        ) {
          child = right
        }
        if (!this.#less(this.#times[child]!, this.#seqs[child]!, lastTime, lastSeq)) break
        this.#move(child, i)
        i = child
      }
      this.#set(i, lastTime, lastSeq, lastItem)
    }
    return { atMs, item }
  }

  #less(t1: number, s1: number, t2: number, s2: number): boolean {
    return t1 < t2 || (t1 === t2 && s1 < s2)
  }

  #move(from: number, to: number): void {
    this.#times[to] = this.#times[from]!
    this.#seqs[to] = this.#seqs[from]!
    this.#items[to] = this.#items[from]!
  }

  #set(i: number, atMs: number, seq: number, item: T): void {
    this.#times[i] = atMs
    this.#seqs[i] = seq
    this.#items[i] = item
  }
}
