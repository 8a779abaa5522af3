/**
 * Calls `stop` on the first SIGINT (Ctrl-C) or SIGTERM (kill, systemd, a supervisor), so that a
 * command that runs until interrupted ends by itself with its exit code instead of dying of the
 * signal. Returns the function that removes the handlers once the command is done.
 */
export function onInterrupt(stop: () => void): () => void {
  const signals = ['SIGINT', 'SIGTERM'] as const
  const remove = () => {
    for (const signal of signals) process.off(signal, handler)
  }
  const handler = () => {
    remove()
    stop()
  }
  for (const signal of signals) process.on(signal, handler)
  return remove
}
