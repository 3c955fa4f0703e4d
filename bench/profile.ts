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

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[]
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
}

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
  readonly functions: readonly ProfileRow[]
  readonly files: readonly ProfileRow[]
}

/** Self time per function (name, file, line) and per file, the top `top` of each, idle excluded. */
export function summarizeProfile(path: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile
  const frames = new Map<number, CallFrame>()
  for (const node of profile.nodes) frames.set(node.id, node.callFrame)
  const byFunction = new Map<string, { name: string; file: string; us: number }>()
  const byFile = new Map<string, number>()
  let idleUs = 0
  let busyUs = 0
  profile.samples.forEach((id, i) => {
    // timeDeltas[i + 1] is the time until the next sample: the time spent in this one.
    const us = profile.timeDeltas[i + 1] ?? 0
    const frame = frames.get(id)
    if (frame === undefined) return
    if (frame.functionName === '(idle)') {
      idleUs += us
      return
    }
    busyUs += us
    const file = fileOf(frame.url)
    const name = frame.functionName === '' ? '(anonymous)' : frame.functionName
    const key = `${name}\u0000${file}\u0000${frame.lineNumber}`
    const entry = byFunction.get(key) ?? {
      name,
      file: frame.url === '' ? file : `${file}:${frame.lineNumber + 1}`,
      us: 0,
    }
    entry.us += us
    byFunction.set(key, entry)
    byFile.set(file, (byFile.get(file) ?? 0) + us)
  })
  const pct = (us: number): number => (busyUs === 0 ? 0 : (us / busyUs) * 100)
  const functions = [...byFunction.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((f) => ({ name: f.name, file: f.file, selfMs: f.us / 1000, pct: pct(f.us) }))
  const files = [...byFile]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([file, us]) => ({ name: file, file, selfMs: us / 1000, pct: pct(us) }))
  return { busyMs: busyUs / 1000, idleMs: idleUs / 1000, functions, files }
}
