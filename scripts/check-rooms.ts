/**
 * `npm run lint` step: every import of src/ and sim/ against the room table in
 * scripts/house/rooms.ts. Exits 1 on a violation that is not in `knownViolations`.
 */
import { checkedDirs, knownViolations, roomViolations, violationKey } from './house/rooms.ts'
import { readSources, repositoryRoot } from './house/source.ts'

const violations = roomViolations(readSources(repositoryRoot, checkedDirs))
const known = new Set(knownViolations)
const fresh = violations.filter((v) => !known.has(violationKey(v)))
const stillThere = new Set(violations.map(violationKey))
const fixed = knownViolations.filter((key) => !stillThere.has(key))

for (const v of fresh) console.error(`${v.file}:${v.line}: ${v.specifier} — ${v.problem}`)
const knownCount = violations.length - fresh.length
if (knownCount > 0)
  console.log(`rooms: ${knownCount} known violations left to fix (scripts/house/rooms.ts, knownViolations)`)
for (const key of fixed)
  console.log(`rooms: "${key}" no longer occurs: delete it from knownViolations in scripts/house/rooms.ts`)
if (fresh.length > 0) {
  console.error(`rooms: ${fresh.length} imports break the room table (docs/architecture.md, "Rooms")`)
  process.exit(1)
}
