/**
 * Whether a program a test drives (promtool, nats-server) is on this machine. `.ci/run`
 * installs them; a developer's machine may lack one, and its tests then skip saying so.
 */

/** True when `program --version` cannot run (not on PATH) or fails. */
export async function programMissing(program: string): Promise<boolean> {
  try {
    // Deno.Command throws at once, not in the promise, when the program is not on PATH.
    return !(await new Deno.Command(program, { args: ["--version"] }).output()).success;
  } catch {
    return true;
  }
}
