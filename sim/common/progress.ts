/**
 * The progress bar both simulator commands show on stderr while seeds run: only on a
 * terminal (a pipe or a CI log gets the summary alone) and only for more than one run.
 */
import { SingleBar } from 'cli-progress'

export function startProgress(
  total: number,
  format: string,
  payload: Record<string, unknown>,
): SingleBar | undefined {
  if (!process.stderr.isTTY || total <= 1) return undefined
  const bar = new SingleBar({ stream: process.stderr, format, hideCursor: true })
  bar.start(total, 0, payload)
  return bar
}
