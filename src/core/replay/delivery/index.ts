/**
 * The HTTP delivery engine of a replay: it POSTs stored events to one customer webhook, signed, with
 * retries, a rate limit and an ordered window whose checkpoint never passes an undelivered event.
 *
 *   retry-policy      attempts, backoff with full jitter, Retry-After
 *   rate-limit        the token bucket (Twitter's 2,500 events/s cap)
 *   webhook-client    one per job: undici pool, signing, timeouts, retries, classification
 *   latency           the latency histogram a client reports
 *   ordered-window    OrderedDelivery: log order, maxInFlight, the checkpoint
 *   completion-event  Twitter's final {"replay_job_status": ...} POST
 */
export * from './retry-policy.js'
export * from './rate-limit.js'
export * from './webhook-client.js'
export * from './ordered-window.js'
export * from './completion-event.js'
