import type { Command } from 'commander';
import type { Analysis } from '../../analysis/types.js';
import {
  createDaemonClient,
  failOnError,
  withDaemonOptions,
  type ClientOptions,
} from '../client.js';
import { paint, useColour } from '../table.js';

/** `switchyard why`: the situations, the plan, and what stops it, for people. */
export function renderAnalysis(analysis: Analysis, colour = false): string {
  const lines = [
    `cluster ${analysis.cluster}: mode ${analysis.mode}; writer ${analysis.writer ?? '(none)'}${analysis.host ? `; about ${analysis.host}` : ''} (${analysis.at})`,
  ];
  if (analysis.situations.length === 0)
    lines.push(
      analysis.host ? `nothing unusual about ${analysis.host}` : 'situations: none (healthy)',
    );
  else {
    lines.push('situations:');
    for (const situation of analysis.situations)
      lines.push(`  ${paint(colour, 'yellow', situation.name)}: ${situation.summary}`);
  }
  const plan = analysis.plan;
  if (!plan) lines.push('plan: nothing to do for the writer role');
  else {
    lines.push(
      `plan: ${plan.kind} of ${plan.role} ${plan.from ?? '(none)'} -> ${plan.to ?? '(no candidate)'}: ${plan.reason}`,
    );
    plan.steps.forEach((step, index) =>
      lines.push(
        `  ${index + 1}. ${step.step}${step.host ? ` (${step.host})` : ''}: ${step.detail}`,
      ),
    );
    lines.push(
      analysis.acts
        ? paint(colour, 'green', 'the engine runs this plan now')
        : paint(colour, 'red', 'the engine does not run this plan now'),
    );
  }
  if (analysis.blockers.length > 0) {
    lines.push('what stops it:');
    for (const blocker of analysis.blockers) {
      const extras = [
        blocker.rule ? `rule: ${blocker.rule}` : undefined,
        blocker.from?.length ? `from: ${blocker.from.join(', ')}` : undefined,
        blocker.until ? `until ${blocker.until}` : undefined,
      ].filter(Boolean);
      lines.push(
        `  ${paint(colour, 'red', blocker.kind)}${blocker.host ? ` (${blocker.host})` : ''}: ${blocker.detail}${extras.length ? ` [${extras.join('; ')}]` : ''}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

export function registerWhy(program: Command): void {
  withDaemonOptions(
    program
      .command('why')
      .description(
        'the situations the engine sees now, the plan it would run, and what stops it when it does not act',
      )
      .argument('[host]', 'only what is about this host')
      .option('--json', 'print JSON'),
  ).action(async (host: string | undefined, options: ClientOptions & { json?: boolean }) => {
    const client = createDaemonClient(options);
    const result = await client.request<Analysis>(
      'GET',
      `/api/v1/analysis${host ? `?host=${encodeURIComponent(host)}` : ''}`,
    );
    failOnError(result);
    process.stdout.write(
      options.json
        ? `${JSON.stringify(result.body, null, 2)}\n`
        : renderAnalysis(result.body, useColour()),
    );
  });
}
