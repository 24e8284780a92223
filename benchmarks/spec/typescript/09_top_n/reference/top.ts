export function topN(scores: Record<string, number>, n: number): string[] {
  if (!Number.isInteger(n) || n < 0) throw new RangeError("n must be a non-negative integer");
  return Object.entries(scores)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, n)
    .map(([name]) => name);
}
