const UNIT_BYTES: Record<string, number> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
};

/**
 * Parses "64MiB", "500KB", "1GiB" into bytes. Like durations, a size always carries its unit:
 * KiB/MiB/GiB are powers of 1024, KB/MB/GB powers of 1000, B is bytes.
 */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB)\s*$/.exec(text);
  if (!match)
    throw new Error(
      `"${text}" is not a size (use a number with a unit: 512KiB, 64MiB, 1GiB, 100MB)`,
    );
  return Math.round(Number(match[1]) * (UNIT_BYTES[match[2] as string] as number));
}

/** The shortest exact way to write a byte count with parseSize's units (binary units first). */
export function formatSize(bytes: number): string {
  for (const unit of ['GiB', 'MiB', 'KiB', 'GB', 'MB', 'KB'] as const) {
    const factor = UNIT_BYTES[unit] as number;
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes}B`;
}
