/**
 * Records packed the way the client's `produceBatch` (our client patch) takes them: keys, values
 * and header bytes back to back in one buffer, and 8 numbers per record in an index (partition,
 * key start and length, value start and length, timestamp, first header, header count; a length
 * of -1 is null). Header names and values sit in the same buffer, 4 numbers each in a header
 * index. The buffers are reused once a batch has been taken (the client copies the bytes), so
 * a writer allocates them once.
 */
/** Header values may be null, written as null (a header with no value), apart from empty. */
export type Headers = {[key: string]: string | Buffer | null}[]

/** Numbers per record and per header (the client's Producer.PRODUCE_BATCH_STRIDE and _HEADER_STRIDE). */
export const RECORD_STRIDE = 8
export const HEADER_STRIDE = 4

export class RecordBatch {
  data: Buffer
  index: Float64Array
  headerIndex: Float64Array
  /** Records in the batch. */
  length = 0
  /** Bytes of `data` in use. */
  bytes = 0
  /** Bytes of record values, for the writer's statistics. */
  valueBytes = 0
  private headers = 0
  /** The headers last packed, and where their entries start: records sharing them share entries. */
  private lastHeaders: Headers | undefined
  private lastHeadersFirst = 0

  constructor(records = 1024, bytes = 1 << 20) {
    this.data = Buffer.allocUnsafe(bytes)
    this.index = new Float64Array(records * RECORD_STRIDE)
    this.headerIndex = new Float64Array(16 * HEADER_STRIDE)
  }

  /** Empties the batch for reuse; only once the client has taken every record. */
  clear(): void {
    this.length = 0
    this.bytes = 0
    this.valueBytes = 0
    this.headers = 0
    this.lastHeaders = undefined
  }

  /**
   * Appends one record: to `partition`, or where the partitioner puts its key when it is -1; a
   * null key or value stays null, an empty one empty; a null timestamp is the time of writing.
   */
  add(
    key: Buffer | string | null,
    value: Buffer | null,
    timestamp: number | null,
    partition = -1,
    headers?: Headers,
  ): void {
    if ((this.length + 1) * RECORD_STRIDE > this.index.length)
      this.index = grown(this.index, (this.length + 1) * RECORD_STRIDE)
    const at = this.length * RECORD_STRIDE
    const index = this.index
    index[at] = partition
    this.place(index, at + 1, key)
    this.place(index, at + 3, value)
    this.valueBytes += value?.length ?? 0
    index[at + 5] = timestamp ?? 0
    if (headers?.length) {
      if (headers !== this.lastHeaders) this.packHeaders(headers)
      index[at + 6] = this.lastHeadersFirst
      index[at + 7] = headers.length
    } else {
      index[at + 6] = 0
      index[at + 7] = 0
    }
    this.length++
  }

  /** Appends bytes and writes their start and length at index[at], index[at + 1] (null: 0, -1). */
  private place(index: Float64Array, at: number, bytes: Buffer | string | null): void {
    if (bytes === null) {
      index[at] = 0
      index[at + 1] = -1
    } else {
      index[at] = this.bytes
      index[at + 1] = this.append(bytes)
    }
  }

  /** Copies bytes (a string as UTF-8) to the end of `data`; returns their length. */
  private append(bytes: Buffer | string): number {
    if (typeof bytes === 'string') {
      this.reserve(bytes.length * 3)
      const length = this.data.write(bytes, this.bytes, 'utf8')
      this.bytes += length
      return length
    }
    this.reserve(bytes.length)
    // TypedArray#set copies with a memmove; Buffer#copy first builds a view of the source.
    this.data.set(bytes, this.bytes)
    this.bytes += bytes.length
    return bytes.length
  }

  private reserve(more: number): void {
    if (this.bytes + more <= this.data.length) return
    const data = Buffer.allocUnsafe(Math.max(this.data.length * 2, this.bytes + more))
    this.data.copy(data, 0, 0, this.bytes)
    this.data = data
  }

  private packHeaders(headers: Headers): void {
    const needed = (this.headers + headers.length) * HEADER_STRIDE
    if (needed > this.headerIndex.length) this.headerIndex = grown(this.headerIndex, needed)
    this.lastHeaders = headers
    this.lastHeadersFirst = this.headers
    for (const header of headers) {
      // One name per header object; an empty object still takes its slot, as a nameless header.
      const [name = ''] = Object.keys(header)
      const at = this.headers * HEADER_STRIDE
      this.place(this.headerIndex, at, name)
      this.place(this.headerIndex, at + 2, header[name] ?? null)
      this.headers++
    }
  }
}

function grown(array: Float64Array, needed: number): Float64Array {
  const larger = new Float64Array(Math.max(array.length * 2, needed))
  larger.set(array)
  return larger
}
