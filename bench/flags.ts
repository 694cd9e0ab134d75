/** Command-line flags shared by the bench scripts: `--flag value`, `--flag=value`, `--switch`. */
export class UsageError extends Error {}

/** Flag → value ('' for a switch). Unknown flags, stray arguments, missing values and repeats are usage errors. */
export function splitFlags(argv: string[], valued: ReadonlySet<string>, switches: ReadonlySet<string>): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const [flag = '', inline] = arg.split(/=(.*)/s, 2);
    if (flags.has(flag)) throw new UsageError(`${flag} given twice`);
    if (switches.has(flag) && inline === undefined) flags.set(flag, '');
    else if (valued.has(flag)) {
      const value = inline ?? argv[++i];
      if (value === undefined || value === '' || value.startsWith('--')) throw new UsageError(`${flag} needs a value`);
      flags.set(flag, value);
    } else throw new UsageError(arg.startsWith('-') ? `unknown flag: ${arg}` : `unexpected argument: ${arg}`);
  }
  return flags;
}
