/** Request latency as a delivery reports it: a log-scale histogram with mean, p50, p99 and max. */

export interface LatencySummary {
  /** Successful (2xx) requests measured. */
  count: number
  meanMs: number
  /** Percentiles from a log-scale histogram: within about 10%. */
  p50Ms: number
  p99Ms: number
  maxMs: number
}

/** Successful request durations in log-scale buckets (about 10% wide) from 0.05 ms. */
export class LatencyHistogram {
  private static readonly BASE = 0.05
  private static readonly GROWTH = 1.1
  private readonly buckets = new Uint32Array(200)
  private count = 0
  private sum = 0
  private max = 0

  record(ms: number): void {
    const index =
      ms <= LatencyHistogram.BASE
        ? 0
        : Math.min(
            this.buckets.length - 1,
            Math.ceil(Math.log(ms / LatencyHistogram.BASE) / Math.log(LatencyHistogram.GROWTH)),
          )
    this.buckets[index] = (this.buckets[index] ?? 0) + 1
    this.count++
    this.sum += ms
    if (ms > this.max) this.max = ms
  }

  private quantile(q: number): number {
    if (this.count === 0) return 0
    const rank = Math.ceil(q * this.count)
    let seen = 0
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i] ?? 0
      if (seen >= rank) return Math.min(this.max, LatencyHistogram.BASE * LatencyHistogram.GROWTH ** i)
    }
    return this.max
  }

  summary(): LatencySummary {
    const round = (ms: number) => Math.round(ms * 100) / 100
    return {
      count: this.count,
      meanMs: round(this.count ? this.sum / this.count : 0),
      p50Ms: round(this.quantile(0.5)),
      p99Ms: round(this.quantile(0.99)),
      maxMs: round(this.max),
    }
  }
}
