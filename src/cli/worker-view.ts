import type {WorkerSummary} from '../core/replay/worker.js'
import type {ReplayWorker} from '../core/replay/worker.js'
import {logWorker} from './log-lines.js'
import {details} from './output.js'
import {uiMode} from './progress.js'
import {mountView} from './ui/mount.js'
import {WorkerModel} from './worker-model.js'

/**
 * How a running worker shows itself (the mode chosen as for all progress, see progress.ts): a live
 * dashboard on a terminal, JSON log lines otherwise (under --json only warnings and errors).
 * Returns the function that closes the view.
 */
export async function showWorker(worker: ReplayWorker, json: boolean): Promise<() => Promise<void>> {
  const mode = uiMode(json)
  if (mode !== 'tty') {
    const stop = logWorker(worker, {minLevel: mode === 'plain' ? 'info' : 'warn'})
    return async () => stop()
  }
  const model = new WorkerModel(worker)
  const view = await mountView(async () => (await import('./ui/worker-dashboard.js')).WorkerDashboard, {model})
  return async () => {
    model.emit('change')
    await view.unmount()
  }
}

/** What a worker did, for a person, once it stops. */
export function formatWorkerSummary(summary: WorkerSummary): string {
  return details(
    Object.entries(summary.jobs).map(([outcome, count]): [string, number] => [
      `jobs ${outcome.toLowerCase()}`,
      count ?? 0,
    ]),
  )
}
