import { CoreApp, DataSourceInstanceSettings, MetricFindValue, ScopedVars } from '@grafana/data';
import { DataSourceWithBackend, getTemplateSrv } from '@grafana/runtime';

import { Anomaly, ApiResponse, DEFAULT_QUERY, SeriesHistory, SMJsonData, SMQuery } from './types';

export const DATASOURCE_TYPE = 'sentinelmesh-anomaly-datasource';

/**
 * The Sentinel Mesh data source. Queries run in the Go backend (so they work
 * in alerting); the frontend adds template variables, annotations and the
 * resource calls used for autocomplete and the app page.
 */
export class DataSource extends DataSourceWithBackend<SMQuery, SMJsonData> {
  constructor(instanceSettings: DataSourceInstanceSettings<SMJsonData>) {
    super(instanceSettings);
    this.annotations = {
      prepareQuery: (anno) => {
        const target = anno.target ?? { refId: 'Anno' };
        return { ...DEFAULT_QUERY, ...target, refId: target.refId || 'Anno', queryType: 'annotations' };
      },
    };
  }

  getDefaultQuery(_app: CoreApp): Partial<SMQuery> {
    return DEFAULT_QUERY;
  }

  filterQuery(query: SMQuery): boolean {
    // A series query without matchers would only return an error.
    return !query.hide && (query.queryType !== 'series' || !!query.matchers?.trim());
  }

  applyTemplateVariables(query: SMQuery, scopedVars: ScopedVars): SMQuery {
    const srv = getTemplateSrv();
    return {
      ...query,
      matchers: query.matchers ? srv.replace(query.matchers, scopedVars, 'regex') : query.matchers,
      groupBy: query.groupBy ? srv.replace(query.groupBy, scopedVars) : query.groupBy,
    };
  }

  /** Label names of current series, for autocomplete. */
  async getLabelNames(selector?: string): Promise<string[]> {
    return this.getData<string[]>('labels', selector ? { 'match[]': selector } : undefined);
  }

  /** Values of one label among current series, for autocomplete. */
  async getLabelValues(name: string, selector?: string): Promise<string[]> {
    return this.getData<string[]>(`label/${encodeURIComponent(name)}/values`, selector ? { 'match[]': selector } : undefined);
  }

  async getAnomalies(params: Record<string, string>): Promise<Anomaly[]> {
    return this.getData<Anomaly[]>('anomalies', params);
  }

  async getSeries(selector: string, startMs: number, endMs: number): Promise<SeriesHistory[]> {
    return this.getData<SeriesHistory[]>('series', {
      'match[]': selector,
      start: (startMs / 1000).toFixed(3),
      end: (endMs / 1000).toFixed(3),
    });
  }

  /** Template variables: label_values(name) or label_names(). */
  async metricFindQuery(query: string): Promise<MetricFindValue[]> {
    const q = getTemplateSrv().replace(query);
    const values = /^\s*label_values\(\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/.exec(q);
    if (values) {
      return (await this.getLabelValues(values[1])).map((text) => ({ text }));
    }
    return (await this.getLabelNames()).map((text) => ({ text }));
  }

  private async getData<T>(path: string, params?: Record<string, string>): Promise<T> {
    let res: ApiResponse<T>;
    try {
      res = await this.getResource(path, params);
    } catch (err) {
      // Non-2xx answers arrive as FetchError with the API envelope in data.
      const body = (err as { data?: ApiResponse<T> }).data;
      throw new Error(body?.error || (err as Error).message || `Sentinel Mesh ${path} failed`);
    }
    if (res.status !== 'success' || res.data === undefined) {
      throw new Error(res.error || `Sentinel Mesh ${path} failed`);
    }
    return res.data;
  }
}
