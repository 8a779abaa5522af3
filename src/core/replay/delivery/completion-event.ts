import type {Gap} from '../store/jobs/index.js'
import {isoTime} from '../../shared/time.js'
import {xxh64} from '../dedup.js'
import {messageIdFor, type SendResult, type WebhookClient} from './webhook-client.js'

/** Twitter's final replay event, {"replay_job_status": ...}: its body and its delivery. */

/**
 * How a replay ended, as its customer is told: complete (with what it may have missed), stopped at
 * an event the webhook did not take (with the webhook's HTTP status when it answered), cancelled, or
 * failed for a reason of ours (Kafka, MySQL, attempts used up, a bug), which is not theirs to read.
 */
export type CompletionOutcome =
  | {kind: 'complete'; delivered: number; gaps: Gap[]}
  | {kind: 'undelivered'; delivered: number; status?: number}
  | {kind: 'cancelled'}
  | {kind: 'failed'}

export interface CompletionEvent {
  webhookId: string
  jobId: string
  outcome: CompletionOutcome
}

const events = (n: number) => `${n} event${n === 1 ? '' : 's'}`

function gapSentence(gap: Gap): string {
  switch (gap.kind) {
    case 'before-log':
      return `Events before ${isoTime(gap.heldFromMs)} were no longer held and were not replayed.`
    case 'partition-growth':
      return (
        'Some events may not have been replayed: ' +
        'the event log was reorganized during the range, at a time not recorded.'
      )
    case 'unknown':
      return 'Some events may not have been replayed.'
  }
}

/**
 * job_state_description: fixed sentences a customer can read, built from the outcome alone so that
 * no topic, partition, offset, host or internal error reaches their webhook. The operator's detail
 * stays in the job (last_error, notes) and `replay status`.
 */
export function completionDescription(outcome: CompletionOutcome): string {
  switch (outcome.kind) {
    case 'complete': {
      // Two topics' gaps of one kind read as one sentence.
      const gaps = new Set(outcome.gaps.map(gapSentence))
      return [`Replayed ${events(outcome.delivered)}.`, ...gaps].join(' ')
    }
    case 'undelivered': {
      const answer = outcome.status === undefined ? 'could not be reached' : `answered HTTP ${outcome.status}`
      return `Not every event could be delivered: the webhook ${answer} (${outcome.delivered} delivered).`
    }
    case 'cancelled':
      return 'Cancelled by an operator.'
    case 'failed':
      return 'The replay could not be completed.'
  }
}

/** The body of Twitter's final replay event. */
export function completionEventBody(event: CompletionEvent): Buffer {
  return Buffer.from(
    JSON.stringify({
      replay_job_status: {
        webhook_id: event.webhookId,
        job_state: event.outcome.kind === 'complete' ? 'Complete' : 'Incomplete',
        job_state_description: completionDescription(event.outcome),
        job_id: event.jobId,
      },
    }),
    'utf8',
  )
}

/**
 * POSTs `{"replay_job_status": {webhook_id, job_state, job_state_description, job_id}}`, signed and
 * retried like an event. Its webhook-id is derived from the job id, so it is stable across retries.
 */
export function sendCompletionEvent(client: WebhookClient, event: CompletionEvent): Promise<SendResult> {
  const body = completionEventBody(event)
  return client.deliver({body, messageId: messageIdFor(xxh64(Buffer.from(`replay_job_status:${event.jobId}`, 'utf8')))})
}
