export {earlierCounts, toSighting, type PartitionCountRow, type PartitionCountSighting} from './model.js'
export {partitionCountHistory} from './partition-count-history.js'
export {recordPartitionCount} from './record-partition-count.js'
