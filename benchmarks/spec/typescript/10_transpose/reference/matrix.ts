export function transpose(m: number[][]): number[][] {
  if (m.length === 0) return [];
  const width = m[0].length;
  if (m.some((row) => row.length !== width)) throw new Error("ragged matrix");
  return Array.from({ length: width }, (_, c) => m.map((row) => row[c]));
}
