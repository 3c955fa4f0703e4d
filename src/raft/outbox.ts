/**
 * The messages the core has queued for its next Ready. The core never sends: its driver
 * drains these. Two queues, because some messages promise something about this member's
 * disk — a vote grant or a vote request (the candidate's own vote), an append
 * acknowledgement — and may leave only once the Ready's writes are synced (Raft paper
 * Figure 2: persistent state is on stable storage before a member answers). The rest may
 * leave at once, even before this member's own write (dissertation §10.2.1).
 * Both are bounded by the Ready cycle: the driver takes them every Ready.
 */
import type { Message } from './types.ts'

export class Outbox {
  #messages: Message[] = []
  #afterPersist: Message[] = []

  /** A message that promises nothing about this member's disk. */
  send(m: Message): void {
    this.#messages.push(m)
  }

  /** A message that promises durability: it leaves after the Ready's persist. */
  sendAfterPersist(m: Message): void {
    this.#afterPersist.push(m)
  }

  /** Messages queued to leave at once so far (the leader notes who a broadcast reached). */
  get count(): number {
    return this.#messages.length
  }

  isEmpty(): boolean {
    return this.#messages.length === 0 && this.#afterPersist.length === 0
  }

  take(): { readonly messages: readonly Message[]; readonly messagesAfterPersist: readonly Message[] } {
    const taken = { messages: this.#messages, messagesAfterPersist: this.#afterPersist }
    this.#messages = []
    this.#afterPersist = []
    return taken
  }
}
