/**
 * The membership operator of one member: who is in the cluster, how to reach them, and
 * the operator's requests that change it.
 *
 * The Raft core only knows member ids and makes one change at a time (dissertation
 * §4.1). Everything an operator and the network need beyond that lives here: the member
 * directory (ids to URLs, replicated in the state machine so that it travels in snapshots
 * and the core stays byte-oriented), which peers to dial, adding a member as a learner
 * and promoting it once caught up (dissertation §4.2.1), removing members — the leader
 * too (§4.2.2) — where a removed member stops serving rather than disrupt the rest
 * (§4.2.3), and leadership transfer (§3.10), which a stopping leader uses to hand over
 * without an election.
 *
 * Requests here wait on events (Waiters: the change's entry applied, the next Ready
 * handled), bounded by the request's deadline; nothing polls the core on a timer.
 */
import type { Logger } from 'pino'
import { type Command, encodeCommand, type Result, type Tid } from '../protocol/index.ts'
import { type ConfChange, isQuorum, type NodeId, type RaftNode } from '../raft/index.ts'
import type { MemberDirectoryEntry, ObjectStore } from '../storage/index.ts'
import { MemberError, NoMajorityError } from './errors.ts'
import type { Clock, PeerNetwork } from './seams.ts'
import type { Waiters } from './waiters.ts'

/** A learner this close to the leader's log catches up within a heartbeat or two once it votes. */
const promoteLagEntriesDefault = 100
/** Election timeouts a member waits with its removal in its log before it stops (see `checkRemoved`). */
const removedGraceElections = 3

/** One member as `member list` shows it. */
export interface MemberInfo {
  readonly id: NodeId
  readonly url: string
  readonly role: 'voter' | 'learner'
  /** Added as a read mirror: stays a learner. */
  readonly mirror: boolean
  /** On the leader: the last index known to be on this member's disk (-1 elsewhere). */
  readonly match: number
}

/** What the membership operator needs from its member. */
export interface MembershipHost {
  readonly id: NodeId
  /** Every member's client-facing URL from the command line. */
  readonly urls: ReadonlyMap<NodeId, string>
  readonly clock: Clock
  readonly network: PeerNetwork
  readonly logger: Logger
  readonly node: RaftNode
  readonly store: ObjectStore
  readonly waiters: Waiters
  readonly tickMs: number
  readonly electionTicks: number
  readonly requestTimeoutMs: number
  readonly promoteLagEntries: number | undefined
  /** Started to join a running cluster (`join`): not yet in any configuration it has seen. */
  readonly joining: boolean
  /** Proposes a command and waits for its result (Member.propose). */
  propose(command: Command): Promise<Result>
  /** Runs the Ready loop: the core has something new. */
  kick(): void
  /** Throws when the member no longer serves. */
  checkServing(): void
  stopped(): boolean
  nowTid(): Tid
}

export class Membership {
  readonly #host: MembershipHost
  /** The replicated member directory: URLs by id. */
  #directory = new Map<NodeId, MemberDirectoryEntry>()
  #peersKey = ''
  #removed = false
  readonly #removedListeners = new Set<() => void>()
  #seededDirectoryTerm = 0
  #excludedTicks = 0
  /**
   * A joining member first sees configurations from before its own addition (the leader's
   * snapshot, the log's first entries): until it sees itself in one, being left out of
   * them is not a removal. Found by the system simulator: new members stopped serving
   * right after installing their first snapshot. The one it sees itself in must be
   * committed (applied here): an addition that was never committed can be undone by a
   * new leader, whose snapshot from before the member's second addition then leaves it
   * out too (listAppend seed 1909: the re-added member stopped, and its vote was lost).
   */
  #awaitingFirstConf: boolean

  constructor(host: MembershipHost) {
    this.#host = host
    this.#awaitingFirstConf = host.joining
  }

  async loadDirectory(): Promise<void> {
    const entries = await this.#host.store.memberDirectory()
    this.#directory = new Map(entries.map((entry) => [entry.id, entry]))
  }

  /** A member's URL: the replicated directory's, else the one given on the command line. */
  urlOf(id: NodeId): string {
    const entry = this.#directory.get(id)
    if (entry !== undefined) return entry.url
    return this.#host.urls.get(id) ?? ''
  }

  leaderHint(): { readonly leaderId: NodeId; readonly leaderUrl: string } {
    const leaderId = this.#host.node.status().leader
    return { leaderId, leaderUrl: this.urlOf(leaderId) }
  }

  notLeader(): MemberError {
    const hint = this.leaderHint()
    const where =
      hint.leaderId === 0
        ? 'no leader is known yet; retry shortly'
        : `member ${hint.leaderId} (${hint.leaderUrl}) leads`
    return new MemberError('notLeader', `Member ${this.#host.id} is not the leader: ${where}.`, hint)
  }

  #isLeader(): boolean {
    return this.#host.node.status().role === 'leader'
  }

  /** Every member this one should talk to, with its URL: the configuration and the directory. */
  peerUrls(): Map<NodeId, string> {
    const conf = this.#host.node.conf()
    const ids = new Set<NodeId>([...conf.voters, ...conf.learners])
    // A member joining knows no configuration yet: it talks to the members it was told of.
    if (ids.size === 0) for (const id of this.#host.urls.keys()) ids.add(id)
    for (const [id, entry] of this.#directory) if (entry.url !== '') ids.add(id)
    ids.add(this.#host.id)
    const urls = new Map<NodeId, string>()
    for (const id of [...ids].sort((a, b) => a - b)) {
      const url = this.urlOf(id)
      if (url !== '') urls.set(id, url)
    }
    return urls
  }

  updatePeers(): void {
    const urls = this.peerUrls()
    const key = JSON.stringify([...urls])
    if (key === this.#peersKey) return
    this.#peersKey = key
    this.#host.network.setPeers?.(urls)
  }

  /**
   * Once this member's removal has applied here, it stops serving (it no longer takes
   * part). The leader stops replicating to a removed member once the removal commits, so
   * the member may never learn the commit: a removal that stays in its log for
   * `removedGraceElections` election timeouts counts too (an uncommitted removal that a
   * new leader truncates puts the member back in its configuration first) — but not while
   * the core says the member may be the only one holding its removal
   * (`neededUntilRemovalCommits`: a leader that appended its own removal and lost its
   * quorum before it committed, whose log is then the longest, and which no other leader
   * has reached since). Leaving then would take a vote that the configuration in force
   * elsewhere still counts (found by the system simulator, bank seed 1906 and three more:
   * no leader was ever elected again).
   */
  checkRemoved(ticked = false): void {
    const { node, id } = this.#host
    const conf = node.conf()
    if (this.#removed || conf.voters.includes(id) || conf.learners.includes(id)) {
      this.#excludedTicks = 0
      // In a committed configuration at last: only now can a configuration without it be a removal.
      if (!this.#removed && this.#host.store.appliedIndex >= node.status().confIndex)
        this.#awaitingFirstConf = false
      return
    }
    if (conf.voters.length === 0 || this.#awaitingFirstConf) return
    const status = node.status()
    if (ticked && !status.neededUntilRemovalCommits) this.#excludedTicks++
    const graceTicks = removedGraceElections * this.#host.electionTicks
    if (this.#host.store.appliedIndex < status.confIndex && this.#excludedTicks < graceTicks) return
    this.#removed = true
    this.#host.logger.warn('this member was removed from the cluster: it stops serving')
    for (const listener of this.#removedListeners) listener()
  }

  /** Called once when this member has been removed from the configuration. */
  onRemoved(listener: () => void): void {
    this.#removedListeners.add(listener)
    if (this.#removed) listener()
  }

  /**
   * A new leader writes the URLs of members the directory lacks (the founding members,
   * known from the command line) so that members added later learn them from the log.
   */
  maybeSeedDirectory(): void {
    const { node, network } = this.#host
    // Only a network that follows membership (PeerWs) needs the directory to dial members.
    if (!this.#isLeader() || network.setPeers === undefined) return
    const term = node.status().term
    if (this.#seededDirectoryTerm === term) return
    this.#seededDirectoryTerm = term
    const conf = node.conf()
    for (const id of [...conf.voters, ...conf.learners]) {
      const url = this.#host.urls.get(id)
      if (this.#directory.has(id) || url === undefined) continue
      const command = encodeCommand({
        type: 'memberUrl',
        proposedTid: this.#host.nowTid(),
        id,
        url,
        learner: false,
      })
      node.propose([command])
    }
    this.#host.kick()
  }

  /**
   * "A new member joins as a learner and is promoted once caught up": the leader promotes
   * a learner (not added as a mirror) whose log is within `promoteLagEntries` of its own
   * and that has answered recently. One change at a time: the core refuses the rest.
   */
  maybePromote(): void {
    if (!this.#isLeader()) return
    const { node } = this.#host
    const status = node.status()
    const lagMax = this.#host.promoteLagEntries ?? promoteLagEntriesDefault
    for (const progress of status.progress) {
      if (!progress.learner || this.#directory.get(progress.id)?.learner === true) continue
      if (!progress.recentActive || progress.match + lagMax < status.lastIndex) continue
      const result = node.proposeConfChange({ type: 'promote', id: progress.id })
      if (result.ok) this.#host.logger.info({ id: progress.id }, 'promoting a caught-up learner to voter')
      return
    }
  }

  /** The configuration with URLs and, on the leader, each member's match index. */
  members(): { readonly leader: NodeId; readonly members: readonly MemberInfo[] } {
    const status = this.#host.node.status()
    const match = new Map(status.progress.map((p) => [p.id, p.match]))
    const info = (id: NodeId, role: 'voter' | 'learner'): MemberInfo => ({
      id,
      url: this.urlOf(id),
      role,
      mirror: this.#directory.get(id)?.learner === true,
      match: match.get(id) ?? -1,
    })
    return {
      leader: status.leader,
      members: [
        ...status.voters.map((id) => info(id, 'voter')),
        ...status.learners.map((id) => info(id, 'learner')),
      ],
    }
  }

  /** See Member.addMember. */
  async addMember(id: NodeId, url: string, mirror: boolean): Promise<void> {
    this.#host.checkServing()
    if (!this.#isLeader()) throw this.notLeader()
    const known = this.#directory.get(id)
    if (known !== undefined && known.url === '')
      throw new MemberError(
        'protocol',
        `Member id ${id} was removed before and ids are never reused; add the member under a new id.`,
      )
    const conf = this.#host.node.conf()
    if (conf.voters.includes(id) || conf.learners.includes(id))
      throw new MemberError('protocol', `Member ${id} is already in the configuration.`)
    const result = await this.#host.propose({ type: 'memberUrl', proposedTid: 0n, id, url, learner: mirror })
    if (!result.ok) throw new MemberError('internal', `Recording member ${id}'s URL answered ${result.code}.`)
    await this.#confChange({ type: 'addLearner', id })
  }

  /** See Member.removeMember. */
  async removeMember(id: NodeId): Promise<void> {
    this.#host.checkServing()
    if (!this.#isLeader()) throw this.notLeader()
    await this.#awaitMajorityWithout(id)
    await this.#confChange({ type: 'remove', id })
    if (this.#isLeader()) {
      try {
        await this.#host.propose({ type: 'memberUrl', proposedTid: 0n, id, url: '', learner: false })
      } catch (error) {
        // The removal is done; a retired id that is not recorded is only refused less clearly later.
        this.#host.logger.warn({ err: error, id }, 'could not record the removed id as retired')
      }
    }
  }

  /**
   * The strict reconfiguration check (etcd refuses such a removal too, "not enough
   * started members"): a removal takes effect as soon as it is appended and commits only
   * on a majority of the voters left, so with fewer of them answering the leader it would
   * leave the cluster unable to commit anything — the removal included — until enough of
   * them return. Refused instead, while nothing has changed. The leader hears from each
   * member at every heartbeat, but forgets who answered at every check-quorum round, so
   * it waits up to two election timeouts for a majority to be heard from before refusing.
   */
  async #awaitMajorityWithout(id: NodeId): Promise<void> {
    const { node, clock, waiters } = this.#host
    const deadline = clock.nowMs() + this.#electionTimeoutMs() * 2
    const problem = (): string | undefined => {
      const status = node.status()
      const left = status.voters.filter((voter) => voter !== id)
      if (left.length === status.voters.length || left.length === 0) return undefined
      // Heard from lately, and at least once by this leader: right after an election every
      // member counts as recently active (check-quorum's grace), dead ones included (system
      // simulator, registers seed 1865: a new leader removed itself from {1, 2, 3} with 3 dead).
      const answering = new Set(status.progress.filter((p) => p.recentActive && p.answered).map((p) => p.id))
      answering.add(this.#host.id)
      if (isQuorum(left, (voter) => answering.has(voter))) return undefined
      const silent = left.filter((voter) => !answering.has(voter))
      return (
        `Removing member ${id} would leave voters ${left.join(', ')}, of which ${silent.join(', ')} ` +
        `${silent.length === 1 ? 'does' : 'do'} not answer: a majority of them must, or nothing can commit ` +
        `(this removal included). Nothing was changed; bring ${silent.length === 1 ? 'that member' : 'those members'} ` +
        `back, or remove ${silent.length === 1 ? 'it' : 'them'} first, then retry.`
      )
    }
    for (;;) {
      const why = problem()
      if (why === undefined) return
      if (!this.#isLeader()) throw this.notLeader()
      await waiters.nextReady(deadline, () => new NoMajorityError(problem() ?? why))
    }
  }

  /** See Member.transferLeadership. */
  async transferLeadership(to: NodeId, waitMs = this.#electionTimeoutMs() * 2): Promise<void> {
    this.#host.checkServing()
    await this.#transfer(to, waitMs)
  }

  /** A transfer by the member itself: also when it no longer serves clients (a hand-off after corrupt data). */
  async #transfer(to: NodeId, waitMs: number): Promise<void> {
    const { node, clock, waiters } = this.#host
    const result = node.transferLeadership(to)
    if (!result.ok) {
      if (result.code === 'notLeader') throw this.notLeader()
      throw new MemberError('protocol', `Member ${to} is not a voter: leadership goes to voters only.`)
    }
    this.#host.kick()
    const deadline = clock.nowMs() + waitMs
    const timeout = (): MemberError =>
      new MemberError(
        'timeout',
        `Member ${to} did not take over within ${waitMs} ms; leadership stays where it is. Check that member ${to} is up and caught up.`,
      )
    // A new leader shows in a Ready (its soft state): look again after each one.
    while (node.status().leader !== to || this.#isLeader()) await waiters.nextReady(deadline, timeout)
  }

  /**
   * Proposes one membership change and waits until it applies here. While the core asks
   * to wait (the errata fix: this leader's no-op is not committed yet; or another change
   * is pending), it asks again after each Ready, until the request's deadline: that
   * deadline bounds the retries.
   */
  async #confChange(change: ConfChange): Promise<void> {
    const { node, clock, waiters, store } = this.#host
    const deadline = clock.nowMs() + this.#host.requestTimeoutMs
    for (;;) {
      this.#host.checkServing()
      const result = node.proposeConfChange(change)
      if (result.ok) {
        this.#host.kick()
        if (store.appliedIndex >= result.index) return
        await waiters.applied(
          result.index,
          deadline,
          () =>
            new MemberError(
              'timeout',
              `The membership change at index ${result.index} has not applied yet; check \`zeoq member list\` before retrying.`,
            ),
        )
        return
      }
      if (result.code === 'notLeader' || result.code === 'transferring') throw this.notLeader()
      if (result.code === 'invalid')
        throw new MemberError('protocol', `The change is refused: ${result.reason}.`)
      const code = result.code
      await waiters.nextReady(
        deadline,
        () => new MemberError('timeout', `The membership change could not start (${code}); retry.`),
      )
    }
  }

  #electionTimeoutMs(): number {
    return this.#host.tickMs * this.#host.electionTicks
  }

  /** See Member.handOff. */
  async handOff(): Promise<void> {
    if (!this.#isLeader() || this.#host.stopped()) return
    const status = this.#host.node.status()
    const candidates = status.progress
      .filter((p) => p.id !== this.#host.id && !p.learner && p.recentActive && status.voters.includes(p.id))
      .sort((a, b) => b.match - a.match)
    const to = candidates[0]
    if (to === undefined) return
    try {
      await this.#transfer(to.id, this.#electionTimeoutMs() * 2)
      this.#host.logger.info({ to: to.id }, 'handed leadership over')
    } catch (error) {
      this.#host.logger.warn({ err: error, to: to.id }, 'leadership hand-off failed')
    }
  }
}
