export interface Problem {
  /** Key path in the YAML, e.g. `roles.writer.hosts[2]`. */
  path: string;
  message: string;
}

export function formatPath(segments: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? String(segment) : `.${String(segment)}`;
  }
  return out === '' ? '(top level)' : out;
}

export function formatProblem(problem: Problem): string {
  return `${problem.path}: ${problem.message}`;
}

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: Problem[],
  ) {
    super(
      `${file}: ${problems.length} problem(s)\n${problems.map((problem) => `  ${formatProblem(problem)}`).join('\n')}`,
    );
    this.name = 'ConfigError';
  }
}
