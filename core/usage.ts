/**
 * The text of `--help` and `--version`, and the flag parsing in front of everything: a flag
 * is answered before the configuration is read or anything is opened.
 */
import { describeVariables } from "../config.ts";
import { VERSION } from "./version.ts";

/** What the command line asks for. */
export type Invocation =
  | { kind: "run" }
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "bad"; message: string };

/** Reads the arguments: `--help`/`-h`, `--version`/`-V`, or none. */
export function parseArgs(args: readonly string[]): Invocation {
  const [first, ...rest] = args;
  if (first === undefined) return { kind: "run" };
  if (rest.length) return { kind: "bad", message: `Unexpected argument "${rest[0]}"` };
  if (first === "--help" || first === "-h") return { kind: "help" };
  if (first === "--version" || first === "-V") return { kind: "version" };
  return { kind: "bad", message: `Unknown argument "${first}"` };
}

/** `bosun <version>`. */
export function versionText(): string {
  return `bosun ${VERSION}`;
}

/** The usage text: the command, then every variable with its default and meaning. */
export function usageText(): string {
  const vars = describeVariables();
  const width = Math.max(...vars.map((v) => v.name.length));
  const lines = [
    `bosun ${VERSION}: store-and-forward sync gateway for vessels (vessel or shore role)`,
    "",
    "Usage: deno task start [--help | --version]",
    "       bosun [--help | --version]        (the compiled binary)",
    "",
    "  -h, --help       print this and exit",
    "  -V, --version    print the version and exit",
    "",
    "Configured by environment variables (an invalid value stops start-up naming it):",
    "",
  ];
  for (const v of vars) {
    lines.push(`  ${v.name.padEnd(width)}  default: ${v.default}`);
    lines.push(`  ${" ".repeat(width)}  ${v.meaning}`);
  }
  return lines.join("\n");
}
