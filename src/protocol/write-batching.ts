/**
 * Frames to one peer of a connection that leave in the same turn of the event loop go
 * out in one system call. A WebSocket library writes each frame as it is sent (ws corks
 * its socket around a frame's header and payload, then uncorks), so a member answering
 * twenty commits of one Ready, or a client sending the next twenty, makes twenty writes
 * to the kernel; on loopback each also wakes the reader. Corking the socket at the first
 * frame of a turn and uncorking it once the turn's callbacks and promise reactions have
 * run (process.nextTick runs after them) lets Node hand the whole turn's frames to one
 * writev. Nothing waits for a timer: a lone frame leaves at the end of its own turn.
 */

/** The part of a Node stream (net.Socket, tls.TLSSocket) that corking needs. */
export interface Corkable {
  cork(): void
  uncork(): void
}

/**
 * Returns a function to call before each frame written to `stream`: the first call of a
 * turn corks it, and the end of the turn uncorks it (one writev for every frame between).
 */
export function batchWritesPerTurn(stream: Corkable): () => void {
  let corked = false
  const uncork = (): void => {
    corked = false
    stream.uncork()
  }
  return () => {
    if (corked) return
    corked = true
    stream.cork()
    process.nextTick(uncork)
  }
}
