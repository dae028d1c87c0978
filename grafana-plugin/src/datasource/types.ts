import { DataQuery, DataSourceJsonData } from '@grafana/schema';

export type QueryType = 'series' | 'anomalies' | 'incidents' | 'annotations';
export type Direction = 'both' | 'up' | 'down';
export type AnomalyState = 'all' | 'open' | 'closed';
export type SeriesField = 'value' | 'score' | 'expected' | 'lower' | 'upper';

/** The query model; the backend reads the same JSON (pkg/plugin.Query). */
export interface SMQuery extends DataQuery {
  queryType?: QueryType;
  /** One PromQL series selector, e.g. {job="api"}. */
  matchers?: string;
  state?: AnomalyState;
  direction?: Direction;
  limit?: number;
  /** Series fields to return; empty returns all. Alert rules use ['score']. */
  fields?: SeriesField[];
  groupBy?: string;
  unit?: string;
  /** Series: each series' latest result as numbers (numeric-multi frames). */
  instant?: boolean;
}

export const DEFAULT_QUERY: Partial<SMQuery> = {
  queryType: 'series',
  matchers: '',
  direction: 'both',
  state: 'all',
};

export type AuthType = 'none' | 'basic' | 'bearer';

/** Non-secret settings (jsonData); the URL is Grafana's url field. */
export interface SMJsonData extends DataSourceJsonData {
  tenant?: string;
  authType?: AuthType;
  basicAuthUser?: string;
  timeoutSeconds?: number;
}

/** Secrets, only ever sent to Grafana's encrypted secureJsonData. */
export interface SMSecureJsonData {
  basicAuthPassword?: string;
  bearerToken?: string;
}

/** One anomaly as returned by GET /api/v1/anomalies. */
export interface Anomaly {
  id: string;
  tenant: string;
  labels: Record<string, string>;
  state: 'open' | 'closed';
  direction: Direction;
  openedAt: string;
  closedAt?: string;
  updatedAt: string;
  value: number | null;
  expected: number | null;
  lower: number | null;
  upper: number | null;
  score: number | null;
  peakScore: number | null;
  modelVersion?: string;
  /** Opened because another series of the same target was as surprising at the same time. */
  corroborated?: boolean;
  /** The scoring term that opened it: 'prediction', 'level' or 'seasonal'; absent when unknown. */
  cause?: string;
}

/** One series' history as returned by GET /api/v1/series (columns). */
export interface SeriesHistory {
  tenant: string;
  labels: Record<string, string>;
  timestamps: number[];
  value: Array<number | null>;
  score: Array<number | null>;
  expected: Array<number | null>;
  lower: Array<number | null>;
  upper: Array<number | null>;
}

export interface ApiResponse<T> {
  status: 'success' | 'error';
  data?: T;
  errorType?: string;
  error?: string;
  warnings?: string[];
}
