/** Command-line settings of the benches: `--name value`, positive numbers only. */

export function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

export function intArg(name: string, def: number, max: number): number {
  const v = arg(name, def);
  if (!Number.isInteger(v) || v > max) throw new Error(`--${name} must be an integer from 1 to ${max}`);
  return v;
}
