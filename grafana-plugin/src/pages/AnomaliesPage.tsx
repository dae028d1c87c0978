import React, { useCallback, useEffect, useMemo, useState } from 'react';
import { css } from '@emotion/css';
import { DataSourceInstanceSettings, dateTime, GrafanaTheme2, urlUtil } from '@grafana/data';
import { config, getDataSourceSrv, PluginPage } from '@grafana/runtime';
import { Alert, Button, Combobox, ComboboxOption, LinkButton, LoadingPlaceholder, RadioButtonGroup, Stack, useStyles2 } from '@grafana/ui';

import { Sparkline } from '../components/Sparkline';
import { DATASOURCE_TYPE, DataSource } from '../datasource/datasource';
import { buildSelector } from '../datasource/matchers';
import { Anomaly, Direction, SeriesHistory } from '../datasource/types';

/** Sparklines are fetched for at most this many anomalies. */
export const MAX_SPARKLINES = 50;
const LOOKBACK_MS = 60 * 60 * 1000;

/** The Explore URL of one series' score query. */
export function exploreUrl(ds: { uid: string; type: string }, labels: Record<string, string>): string {
  const selector = buildSelector(Object.keys(labels).sort().map((name) => ({ name, op: '=' as const, value: labels[name] })));
  const panes = {
    sm: {
      datasource: ds.uid,
      queries: [{ refId: 'A', datasource: { type: ds.type, uid: ds.uid }, queryType: 'series', matchers: selector }],
      range: { from: 'now-1h', to: 'now' },
    },
  };
  return urlUtil.renderUrl(`${config.appSubUrl ?? ''}/explore`, { schemaVersion: 1, panes: JSON.stringify(panes) });
}

function seriesKey(tenant: string, labels: Record<string, string>): string {
  return tenant + '\u0000' + JSON.stringify(Object.keys(labels).sort().map((k) => [k, labels[k]]));
}

function fmt(v: number | null): string {
  return v === null ? '–' : Math.abs(v) >= 1000 || Math.abs(v) < 0.01 ? v.toExponential(2) : v.toFixed(2);
}

/** What each cause means to the person on call (detector.Cause). */
const CAUSES: Record<string, string> = {
  prediction: 'off its prediction',
  level: 'level shift',
  seasonal: 'unusual for the time of day',
};

const DIRECTIONS: Array<{ label: string; value: Direction }> = [
  { label: 'Both', value: 'both' },
  { label: 'Up', value: 'up' },
  { label: 'Down', value: 'down' },
];

/** Open anomalies of one Sentinel Mesh data source, with sparklines. */
export function AnomaliesPage() {
  const styles = useStyles2(getStyles);
  const sources = useMemo<DataSourceInstanceSettings[]>(() => getDataSourceSrv().getList({ pluginId: DATASOURCE_TYPE }), []);
  const [dsUid, setDsUid] = useState<string | undefined>(sources[0]?.uid);
  const [direction, setDirection] = useState<Direction>('both');
  const [anomalies, setAnomalies] = useState<Anomaly[]>();
  const [history, setHistory] = useState<Map<string, SeriesHistory>>(new Map());
  const [error, setError] = useState<string>();
  const [loading, setLoading] = useState(false);
  const dsSettings = sources.find((s) => s.uid === dsUid);

  const load = useCallback(async () => {
    if (!dsUid) {
      return;
    }
    setLoading(true);
    setError(undefined);
    try {
      const ds = (await getDataSourceSrv().get(dsUid)) as DataSource;
      const list = await ds.getAnomalies({ state: 'open', direction });
      setAnomalies(list);
      const end = Date.now();
      const hist = new Map<string, SeriesHistory>();
      await Promise.all(
        list.slice(0, MAX_SPARKLINES).map(async (a) => {
          const sel = buildSelector(Object.keys(a.labels).map((name) => ({ name, op: '=' as const, value: a.labels[name] })));
          try {
            const series = await ds.getSeries(sel, end - LOOKBACK_MS, end);
            const own = series.find((s) => seriesKey(s.tenant, s.labels) === seriesKey(a.tenant, a.labels));
            if (own) {
              hist.set(a.id, own);
            }
          } catch {
            // A missing sparkline must not hide the anomaly.
          }
        })
      );
      setHistory(hist);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      setAnomalies(undefined);
    } finally {
      setLoading(false);
    }
  }, [dsUid, direction]);

  useEffect(() => {
    load();
  }, [load]);

  const dsOptions: ComboboxOption[] = sources.map((s) => ({ label: s.name, value: s.uid }));

  return (
    <PluginPage>
      <Stack direction="column" gap={2}>
        {sources.length === 0 ? (
          <Alert severity="info" title="No Sentinel Mesh data source">
            Add a data source of type Sentinel Mesh under Connections → Data sources, then come back here.
          </Alert>
        ) : (
          <Stack gap={2} alignItems="center">
            <Combobox aria-label="data source" width={30} value={dsUid ?? null} options={dsOptions} onChange={(o) => setDsUid(String(o.value))} />
            <RadioButtonGroup<Direction> options={DIRECTIONS} value={direction} onChange={setDirection} />
            <Button icon="sync" variant="secondary" onClick={load} disabled={loading}>
              Refresh
            </Button>
          </Stack>
        )}
        {error && (
          <Alert severity="error" title="Cannot load anomalies">
            {error}
          </Alert>
        )}
        {loading && !anomalies && <LoadingPlaceholder text="Loading anomalies…" />}
        {anomalies && anomalies.length === 0 && <p data-testid="no-anomalies">No open anomalies.</p>}
        {anomalies && anomalies.length > 0 && dsSettings && (
          <table className={styles.table} aria-label="open anomalies">
            <thead>
              <tr>
                <th>Series</th>
                <th>Opened</th>
                <th>Direction</th>
                <th>Peak score</th>
                <th>Value / expected</th>
                <th>Last hour</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {anomalies.map((a) => {
                const { __name__: metric, ...rest } = a.labels;
                return (
                  <tr key={a.id} data-testid="anomaly-row">
                    <td>
                      <strong>{metric ?? '(no name)'}</strong>
                      <div className={styles.labels}>
                        {Object.keys(rest)
                          .sort()
                          .map((k) => `${k}="${rest[k]}"`)
                          .join(', ')}
                        {a.tenant && ` · tenant ${a.tenant}`}
                      </div>
                    </td>
                    <td title={a.openedAt}>{dateTime(a.openedAt).fromNow()}</td>
                    <td>
                      {a.direction === 'down' ? '↓ down' : '↑ up'}
                      {a.cause && CAUSES[a.cause] && (
                        <div className={styles.labels} title={`opened by the ${a.cause} term`}>
                          {CAUSES[a.cause]}
                        </div>
                      )}
                    </td>
                    <td>
                      {a.peakScore === null ? '–' : `${Math.round(a.peakScore * 100)}%`}
                      {a.corroborated && (
                        <div className={styles.labels} title="another series of the same target was as surprising at the same time">
                          corroborated
                        </div>
                      )}
                    </td>
                    <td>
                      {fmt(a.value)} / {fmt(a.expected)}
                    </td>
                    <td>{history.has(a.id) ? <Sparkline history={history.get(a.id)!} /> : '–'}</td>
                    <td>
                      <LinkButton size="sm" variant="secondary" icon="compass" href={exploreUrl(dsSettings, a.labels)}>
                        Explore
                      </LinkButton>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </Stack>
    </PluginPage>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  table: css({
    width: '100%',
    borderCollapse: 'collapse',
    'th, td': { padding: theme.spacing(1), borderBottom: `1px solid ${theme.colors.border.weak}`, textAlign: 'left', verticalAlign: 'middle' },
  }),
  labels: css({ color: theme.colors.text.secondary, fontSize: theme.typography.bodySmall.fontSize }),
});
