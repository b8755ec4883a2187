import Table from 'cli-table3';

/**
 * Colour only for a person at a terminal: never in a pipe or a file, and never when NO_COLOR is
 * set to anything non-empty (https://no-color.org).
 */
export function useColour(
  stream: { isTTY?: boolean } = process.stdout,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return stream.isTTY === true;
}

const CODES = { bold: [1, 22], red: [31, 39], green: [32, 39], yellow: [33, 39] } as const;
export type Colour = keyof typeof CODES;

/** Paints text when colour is on; the table measures cells without the escape codes. */
export function paint(colour: boolean, style: Colour, text: string): string {
  if (!colour) return text;
  const [open, close] = CODES[style];
  return `\u001b[${open}m${text}\u001b[${close}m`;
}

/**
 * The CLI's tables: a rule under the header only (a rule between every row doubled the height
 * of `show` and made it harder to scan), header in bold when colour is on, borders never
 * coloured.
 */
export function createTable(head: string[], colour: boolean): Table.Table {
  return new Table({
    head: head.map((title) => paint(colour, 'bold', title)),
    style: { head: [], border: [], compact: true },
  });
}
