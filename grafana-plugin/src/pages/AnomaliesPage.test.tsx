import React from 'react';
import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';

import { runtime, runtimeModule } from '../test/runtimeMock';
import { Anomaly, SeriesHistory } from '../datasource/types';

vi.mock('@grafana/runtime', () => runtimeModule());

const { AnomaliesPage, exploreUrl } = await import('./AnomaliesPage');

const labels = { __name__: 'http_requests_rate', job: 'api', instance: 'a' };

const anomaly: Anomaly = {
  id: '7',
  tenant: 'team-a',
  labels,
  state: 'open',
  direction: 'up',
  openedAt: new Date(Date.now() - 5 * 60_000).toISOString(),
  updatedAt: new Date().toISOString(),
  value: 950,
  expected: 101.5,
  lower: 80,
  upper: 120,
  score: 0.97,
  peakScore: 0.99,
};

const history: SeriesHistory = {
  tenant: 'team-a',
  labels,
  timestamps: [1, 2, 3, 4],
  value: [100, 102, 950, 110],
  score: [0.1, 0.2, 0.99, 0.5],
  expected: [101, 101, 102, 103],
  lower: [90, 90, 91, 80],
  upper: [110, 111, 112, 125],
};

function fakeDatasource(a: Anomaly = anomaly) {
  return {
    uid: 'sm',
    type: 'sentinelmesh-anomaly-datasource',
    getAnomalies: vi.fn(async (_: Record<string, string>) => [a]),
    getSeries: vi.fn(async (_sel: string, _s: number, _e: number) => [{ ...history, tenant: 'other' }, history]),
  };
}

describe('AnomaliesPage', () => {
  beforeEach(() => {
    runtime.dataSources = [{ uid: 'sm', name: 'Sentinel Mesh', type: 'sentinelmesh-anomaly-datasource' }];
  });

  it('marks an anomaly that corroboration opened', async () => {
    runtime.dataSourceInstance = fakeDatasource({ ...anomaly, peakScore: 0.72, corroborated: true });
    render(<AnomaliesPage />);
    const row = within((await screen.findAllByTestId('anomaly-row'))[0]);
    expect(row.getByText('72%')).toBeInTheDocument();
    expect(row.getByText('corroborated')).toBeInTheDocument();
  });

  it('says what opened an anomaly', async () => {
    runtime.dataSourceInstance = fakeDatasource({ ...anomaly, cause: 'seasonal' });
    render(<AnomaliesPage />);
    const row = within((await screen.findAllByTestId('anomaly-row'))[0]);
    expect(row.getByText('unusual for the time of day')).toBeInTheDocument();
  });

  it('lists open anomalies with a sparkline and an Explore link', async () => {
    const ds = fakeDatasource();
    runtime.dataSourceInstance = ds;
    render(<AnomaliesPage />);
    const rows = await screen.findAllByTestId('anomaly-row');
    expect(rows).toHaveLength(1);
    expect(ds.getAnomalies).toHaveBeenCalledWith({ state: 'open', direction: 'both' });
    const row = within(rows[0]);
    expect(row.getByText('http_requests_rate')).toBeInTheDocument();
    expect(row.getByText(/instance="a", job="api" · tenant team-a/)).toBeInTheDocument();
    expect(row.getByText('99%')).toBeInTheDocument();
    expect(row.queryByText('corroborated')).not.toBeInTheDocument();
    expect(row.queryByText('level shift')).not.toBeInTheDocument();
    expect(row.getByText('950.00 / 101.50')).toBeInTheDocument();

    // The sparkline is of the anomaly's own series (same tenant), with band and expected line.
    await waitFor(() => expect(row.getByTestId('sparkline')).toBeInTheDocument());
    expect(ds.getSeries).toHaveBeenCalledWith('{__name__="http_requests_rate", job="api", instance="a"}', expect.any(Number), expect.any(Number));
    expect(row.getByTestId('sparkline-band').getAttribute('d')).toMatch(/^M0\.0,.* Z$/);
    expect(row.getByTestId('sparkline-value').getAttribute('d')?.split(' ')).toHaveLength(4);
    expect(row.getByTestId('sparkline-expected')).toBeInTheDocument();

    const link = row.getByRole('link', { name: /explore/i });
    const href = decodeURIComponent(link.getAttribute('href') ?? '');
    expect(href).toContain('/explore?');
    expect(href).toContain('"queryType":"series"');
    expect(href).toContain('"matchers":"{__name__=\\"http_requests_rate\\", instance=\\"a\\", job=\\"api\\"}"');
  });

  it('filters by direction', async () => {
    const ds = fakeDatasource();
    runtime.dataSourceInstance = ds;
    render(<AnomaliesPage />);
    await screen.findAllByTestId('anomaly-row');
    await userEvent.click(screen.getByLabelText('Down'));
    await waitFor(() => expect(ds.getAnomalies).toHaveBeenLastCalledWith({ state: 'open', direction: 'down' }));
  });

  it('shows errors from the data source', async () => {
    const ds = fakeDatasource();
    ds.getAnomalies.mockRejectedValue(new Error('cannot reach Sentinel Mesh'));
    runtime.dataSourceInstance = ds;
    render(<AnomaliesPage />);
    expect(await screen.findByText('cannot reach Sentinel Mesh')).toBeInTheDocument();
    expect(screen.queryByTestId('anomaly-row')).not.toBeInTheDocument();
  });

  it('says when there are no anomalies', async () => {
    const ds = fakeDatasource();
    ds.getAnomalies.mockResolvedValue([]);
    runtime.dataSourceInstance = ds;
    render(<AnomaliesPage />);
    expect(await screen.findByTestId('no-anomalies')).toBeInTheDocument();
  });

  it('explains how to add a data source when there is none', () => {
    runtime.dataSources = [];
    render(<AnomaliesPage />);
    expect(screen.getByText('No Sentinel Mesh data source')).toBeInTheDocument();
  });
});

describe('exploreUrl', () => {
  it('targets the data source with a series query', () => {
    const url = exploreUrl({ uid: 'u1', type: 't' }, { b: '2', a: '1' });
    const panes = JSON.parse(new URLSearchParams(url.split('?')[1]).get('panes') ?? '{}');
    expect(panes.sm.datasource).toBe('u1');
    expect(panes.sm.queries[0]).toEqual({ refId: 'A', datasource: { type: 't', uid: 'u1' }, queryType: 'series', matchers: '{a="1", b="2"}' });
  });
});
