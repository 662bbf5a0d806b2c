/**
 * Writes a benchmark's Markdown section into BENCHMARKS.md between
 * `<!-- bench:<name>:start -->` and `<!-- bench:<name>:end -->`, leaving the rest of the page as is.
 */

import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export const benchmarksFile = new URL('../../BENCHMARKS.md', import.meta.url);

/** Replaces (or appends) the section `name` of BENCHMARKS.md with `markdown`. */
export function writeSection(name: string, markdown: string): void {
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  const page = existsSync(benchmarksFile) ? readFileSync(benchmarksFile, 'utf8') : '# Benchmarks\n';
  const block = `${start}\n${markdown.trim()}\n${end}`;
  const from = page.indexOf(start);
  const to = page.indexOf(end);
  const next = from >= 0 && to > from ? page.slice(0, from) + block + page.slice(to + end.length) : `${page.trimEnd()}\n\n${block}\n`;
  writeFileSync(benchmarksFile, next);
}

/** Formats rows as a Markdown table. */
export function table(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}
