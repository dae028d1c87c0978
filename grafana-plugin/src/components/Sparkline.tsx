import React from 'react';
import { useTheme2 } from '@grafana/ui';

import { SeriesHistory } from '../datasource/types';

export interface SparklineProps {
  history: SeriesHistory;
  width?: number;
  height?: number;
}

type Pt = [number, number];

/** Finite values of a column with their timestamps. */
function points(ts: number[], vs: Array<number | null>): Pt[] {
  const out: Pt[] = [];
  vs.forEach((v, i) => {
    if (v !== null && Number.isFinite(v)) {
      out.push([ts[i], v]);
    }
  });
  return out;
}

/**
 * Observed values against the expected value and its band, as a small SVG.
 * The vertical range follows the observed and expected values; a band far
 * wider than that (right after a spike) is clipped rather than flattening
 * the line.
 */
export function Sparkline({ history, width = 200, height = 40 }: SparklineProps) {
  const theme = useTheme2();
  const ts = history.timestamps;
  const value = points(ts, history.value);
  const expected = points(ts, history.expected);
  const lower = points(ts, history.lower);
  const upper = points(ts, history.upper);
  if (value.length < 2) {
    return <span data-testid="sparkline-empty">no history</span>;
  }
  const core = [...value, ...expected].map((p) => p[1]);
  let lo = Math.min(...core);
  let hi = Math.max(...core);
  const pad = Math.max((hi - lo) * 0.5, Math.abs(hi) * 0.05, 1e-9);
  lo = Math.max(lo - pad, Math.min(...lower.map((p) => p[1]), lo));
  hi = Math.min(hi + pad, Math.max(...upper.map((p) => p[1]), hi));
  const t0 = ts[0];
  const t1 = ts[ts.length - 1] === t0 ? t0 + 1 : ts[ts.length - 1];
  const x = (t: number) => ((t - t0) / (t1 - t0)) * width;
  const y = (v: number) => height - ((Math.min(Math.max(v, lo), hi) - lo) / (hi - lo || 1)) * height;
  const path = (ps: Pt[]) => ps.map(([t, v], i) => `${i ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const band =
    lower.length > 1 && upper.length > 1
      ? `${path(upper)} ${[...lower]
          .reverse()
          .map(([t, v]) => `L${x(t).toFixed(1)},${y(v).toFixed(1)}`)
          .join(' ')} Z`
      : '';
  return (
    <svg width={width} height={height} role="img" aria-label="observed vs expected band" data-testid="sparkline">
      {band && <path d={band} fill={theme.colors.primary.main} fillOpacity={0.2} stroke="none" data-testid="sparkline-band" />}
      <path d={path(expected)} fill="none" stroke={theme.colors.text.secondary} strokeDasharray="3 3" data-testid="sparkline-expected" />
      <path d={path(value)} fill="none" stroke={theme.colors.warning.main} strokeWidth={1.5} data-testid="sparkline-value" />
    </svg>
  );
}
