import {xxh64} from '../dedup.js'
import {messageIdFor, type SendResult, type WebhookClient} from './webhook-client.js'

/** Twitter's final replay event, {"replay_job_status": ...}: its body and its delivery. */

export interface CompletionEvent {
  webhookId: string
  jobId: string
  jobState: 'Complete' | 'Incomplete'
  description: string
}

/** The body of Twitter's final replay event. */
export function completionEventBody(event: CompletionEvent): Buffer {
  return Buffer.from(
    JSON.stringify({
      replay_job_status: {
        webhook_id: event.webhookId,
        job_state: event.jobState,
        job_state_description: event.description,
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
