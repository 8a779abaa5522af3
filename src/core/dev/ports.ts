import {readdirSync, readFileSync, readlinkSync} from 'node:fs'

/**
 * Ports of the local stack and who holds one. Linux picks the source port of every outgoing
 * connection from its ephemeral range; a listener port inside it can be taken by any client (a
 * client reconnecting to a stopped broker's port can even connect to itself and hold it), so the
 * stack keeps its ports below that range.
 */
export interface PortRange {
  low: number
  high: number
}

/** Linux's ephemeral port range, or null where it cannot be read. */
export function ephemeralRange(file = '/proc/sys/net/ipv4/ip_local_port_range'): PortRange | null {
  try {
    const [low, high] = readFileSync(file, 'utf8').trim().split(/\s+/).map(Number)
    return low !== undefined && high !== undefined && Number.isInteger(low) && Number.isInteger(high)
      ? {low, high}
      : null
  } catch {
    return null
  }
}

export function inRange(port: number, range: PortRange | null): boolean {
  return range !== null && port >= range.low && port <= range.high
}

/** TCP states of /proc/net/tcp (include/net/tcp_states.h) that matter here. */
const TCP_STATE: Record<string, string> = {'01': 'a connection', '0A': 'a listener'}

/**
 * Who holds a local TCP port: "a listener of pid 123 (nc)", or without the pid when the socket
 * belongs to a process this user cannot see; null when no socket has it.
 */
export function portHolder(port: number): string | null {
  const sockets = new Map<string, string>()
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string
    try {
      text = readFileSync(table, 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n').slice(1)) {
      // Columns: sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
      const [, local, , state = '', , , , , , inode] = line.trim().split(/\s+/)
      if (!local || Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16) !== port) continue
      const kind = TCP_STATE[state]
      if (kind && inode !== undefined && !sockets.has(inode)) sockets.set(inode, kind)
    }
  }
  // A listener is the likelier culprit than a connection that happens to use the port.
  const [likeliest] = [...sockets].sort(([, a], [, b]) => (a === 'a listener' ? -1 : b === 'a listener' ? 1 : 0))
  if (!likeliest) return null
  const [inode, kind] = likeliest
  const pid = socketOwner(inode)
  if (pid === null) return `${kind} of a process not visible to this user`
  let name = ''
  try {
    name = ` (${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()})`
  } catch {
    // It has just exited; the pid still says who it was.
  }
  return `${kind} of pid ${pid}${name}`
}

function socketOwner(inode: string): number | null {
  const target = `socket:[${inode}]`
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    let fds: string[]
    try {
      fds = readdirSync(`/proc/${entry}/fd`)
    } catch {
      continue
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${entry}/fd/${fd}`) === target) return Number(entry)
      } catch {
        // Closed meanwhile.
      }
    }
  }
  return null
}
