/**
 * Summarises a V8 CPU profile (`node --cpu-prof`): self time by function and by file,
 * with paths made relative to the repository so the summary names no machine paths.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { ProfileRow } from './results.ts'

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}

/** A node of a V8 `.cpuprofile`; fields this code does not read are kept as they are. */
export interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: readonly number[]
  readonly [key: string]: unknown
}

export interface CpuProfile {
  readonly nodes: readonly ProfileNode[]
  readonly startTime: number
  readonly endTime: number
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
}

/** Frames walked up a stack looking for project code: deeper stacks are cut there. */
const stackDepthMax = 200

const repoRoot = fileURLToPath(new URL('../', import.meta.url))

/** Where a frame's code lives, without machine paths: a repo path, a package, a Node internal, or V8. */
export function fileOf(url: string): string {
  if (url === '') return '(V8 / native)'
  if (url.startsWith('node:')) return url
  const path = url.startsWith('file://') ? fileURLToPath(url) : url
  const modules = path.lastIndexOf('/node_modules/')
  if (modules >= 0) {
    const rest = path.slice(modules + '/node_modules/'.length).split('/')
    const pkg = rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? '')
    return `node_modules/${pkg}`
  }
  if (path.startsWith(repoRoot)) return path.slice(repoRoot.length)
  return path.split('/').slice(-2).join('/')
}

export interface ProfileSummary {
  readonly busyMs: number
  readonly idleMs: number
  /** True when the samples were cut to the measured window; false when the whole profile was used. */
  readonly windowed: boolean
  /** Self time by function. */
  readonly functions: readonly ProfileRow[]
  /** Self time by file or package. */
  readonly files: readonly ProfileRow[]
  /** Time charged to the nearest project function on the stack (src/…): who asked for the work. */
  readonly projectCallers: readonly ProfileRow[]
}

function isProjectFile(file: string): boolean {
  // Members run the build (dist/src/…) in the benchmark.
  return file.startsWith('src/') || file.startsWith('dist/src/') || file.startsWith('bin/')
}

function nameOf(frame: CallFrame): string {
  return frame.functionName === '' ? '(anonymous)' : frame.functionName
}

/** Like fileOf, but keeps the file inside a package (node_modules/classic-level/iterator.js). */
function sourceOf(url: string): string {
  const path = url.startsWith('file://') ? fileURLToPath(url) : url
  const modules = path.lastIndexOf('/node_modules/')
  return modules >= 0 ? path.slice(modules + 1) : fileOf(url)
}

function whereOf(frame: CallFrame): string {
  const file = sourceOf(frame.url)
  // Code run through tsx reports line 0 for every function: then the file alone says more.
  return frame.url === '' || frame.lineNumber <= 0 ? file : `${file}:${frame.lineNumber + 1}`
}

class Tally {
  readonly #rows = new Map<string, { name: string; file: string; us: number }>()

  add(name: string, file: string, us: number): void {
    const key = `${name}\u0000${file}`
    const row = this.#rows.get(key) ?? { name, file, us: 0 }
    row.us += us
    this.#rows.set(key, row)
  }

  top(count: number, busyUs: number): ProfileRow[] {
    return [...this.#rows.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, count)
      .map((r) => ({
        name: r.name,
        file: r.file,
        selfMs: r.us / 1000,
        pct: busyUs === 0 ? 0 : (r.us / busyUs) * 100,
      }))
  }
}

/**
 * Self time per function and per file, and time per nearest project caller, the top
 * `top` of each, idle excluded. With `windowUs` (monotonic µs, V8's profile clock on
 * Linux) only samples inside it count, so start-up and shutdown are left out.
 */
export function summarizeProfile(
  path: string,
  top = 15,
  windowUs?: readonly [number, number],
): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile
  const frames = new Map<number, CallFrame>()
  const parents = new Map<number, number>()
  for (const node of profile.nodes) {
    frames.set(node.id, node.callFrame)
    for (const child of node.children ?? []) parents.set(child, node.id)
  }
  // A process started inside the window (a restarted member) counts from its start.
  const windowed =
    windowUs !== undefined &&
    windowUs[1] >= profile.startTime &&
    windowUs[0] <= profile.endTime &&
    windowUs[1] <= profile.endTime + 1_000_000
  const functions = new Tally()
  const files = new Tally()
  const callers = new Tally()
  let idleUs = 0
  let busyUs = 0
  let atUs = profile.startTime
  profile.samples.forEach((id, i) => {
    atUs += profile.timeDeltas[i] ?? 0
    if (windowed && windowUs !== undefined && (atUs < windowUs[0] || atUs > windowUs[1])) return
    // timeDeltas[i + 1] is the time until the next sample: the time spent in this one.
    const us = profile.timeDeltas[i + 1] ?? 0
    const frame = frames.get(id)
    if (frame === undefined) return
    if (frame.functionName === '(idle)') {
      idleUs += us
      return
    }
    busyUs += us
    functions.add(nameOf(frame), whereOf(frame), us)
    files.add(fileOf(frame.url), fileOf(frame.url), us)
    let caller: CallFrame | undefined
    let node: number | undefined = id
    for (let depth = 0; depth < stackDepthMax && node !== undefined; depth++) {
      const f = frames.get(node)
      if (f !== undefined && isProjectFile(fileOf(f.url))) {
        caller = f
        break
      }
      node = parents.get(node)
    }
    if (caller === undefined) callers.add('(no project code on the stack)', fileOf(frame.url), us)
    else callers.add(nameOf(caller), whereOf(caller), us)
  })
  return {
    busyMs: busyUs / 1000,
    idleMs: idleUs / 1000,
    windowed,
    functions: functions.top(top, busyUs),
    files: files.top(top, busyUs),
    projectCallers: callers.top(top, busyUs),
  }
}
