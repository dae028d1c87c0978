// Places (timestamp, value) samples on a regular grid; missing steps become NaN
// so that windows spanning a gap are skipped when windows are built.

export function toGrid(points, step) {
  if (points.length === 0) return { values: new Float64Array(0), start: 0, step };
  points.sort((a, b) => a[0] - b[0]);
  if (!step) step = medianStep(points);
  const start = points[0][0];
  const n = Math.round((points[points.length - 1][0] - start) / step) + 1;
  if (n > 50_000_000) throw new Error(`series spans ${n} steps of ${step}s, refusing to allocate`);
  const values = new Float64Array(n).fill(NaN);
  for (const [t, v] of points) values[Math.round((t - start) / step)] = v; // the last sample of a slot wins
  return { values, start, step };
}

export function medianStep(points) {
  const d = [];
  for (let i = 1; i < points.length; i++) {
    const s = points[i][0] - points[i - 1][0];
    if (s > 0) d.push(s);
  }
  if (!d.length) return 1;
  d.sort((a, b) => a - b);
  return d[Math.floor(d.length / 2)];
}
