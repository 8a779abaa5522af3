import type {FunctionComponent} from 'react'

/**
 * The one place ink is mounted, for every live view (the worker dashboard, `replay status
 * --watch`, progress bars): on stderr so stdout stays clean for results, console left alone, and
 * Ctrl-C left to the command's own signal handling (a worker hands its jobs back first). ink and
 * React are loaded here on first use, so commands that show no live view never load them.
 */
export interface MountedView {
  /** Lets the last state reach the screen, then removes the view. */
  unmount(): Promise<void>
}

/**
 * `printsTo`: where the view's useStderr().write goes. ink clears its view, writes there and draws
 * the view again below, which is how results printed to stdout (a search's matches) keep the
 * progress line under them on the same terminal instead of tearing it.
 */
export async function mountView<P extends object>(
  load: () => Promise<FunctionComponent<P>>,
  props: P,
  options: {settleMs?: number; printsTo?: NodeJS.WriteStream} = {},
): Promise<MountedView> {
  const [{render}, {createElement}, component] = await Promise.all([import('ink'), import('react'), load()])
  const app = render(createElement(component, props), {
    stdout: process.stderr,
    stderr: options.printsTo ?? process.stderr,
    patchConsole: false,
    exitOnCtrlC: false,
  })
  return {
    unmount: async () => {
      await new Promise((resolve) => setTimeout(resolve, options.settleMs ?? 150))
      app.unmount()
      await app.waitUntilExit()
    },
  }
}
