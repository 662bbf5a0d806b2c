/** Small statistics helpers for the benchmarks. */

/** Returns the `p`-th percentile (0-100) of `values` by the nearest-rank method. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Formats a number with `digits` decimals, or '—' when it is not finite. */
export function fixed(value: number, digits = 0): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '—';
}
