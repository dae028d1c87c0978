import { DataSourceInstanceSettings } from '@grafana/data';
import { beforeEach, describe, expect, it, vi } from 'vitest';

import { runtime, runtimeModule } from '../test/runtimeMock';
import { SMJsonData, SMQuery } from './types';

vi.mock('@grafana/runtime', () => runtimeModule());

const { DataSource } = await import('./datasource');

const ds = new DataSource({ uid: 'sm', type: 'sentinelmesh-anomaly-datasource', jsonData: {} } as DataSourceInstanceSettings<SMJsonData>);

describe('DataSource', () => {
  beforeEach(() => runtime.getResource.mockReset());

  it('turns annotation targets into annotation queries', () => {
    const q = ds.annotations!.prepareQuery!({ target: { refId: 'X', matchers: '{job="api"}' } } as never) as SMQuery;
    expect(q).toMatchObject({ refId: 'X', queryType: 'annotations', matchers: '{job="api"}', direction: 'both' });
  });

  it('skips series queries without matchers', () => {
    expect(ds.filterQuery({ refId: 'A', queryType: 'series', matchers: ' ' })).toBe(false);
    expect(ds.filterQuery({ refId: 'A', queryType: 'series', matchers: 'up' })).toBe(true);
    expect(ds.filterQuery({ refId: 'A', queryType: 'anomalies' })).toBe(true);
    expect(ds.filterQuery({ refId: 'A', queryType: 'anomalies', hide: true })).toBe(false);
  });

  it('reads label names and values through resource calls', async () => {
    runtime.getResource.mockResolvedValueOnce({ status: 'success', data: ['job'] });
    await expect(ds.getLabelNames('{job="api"}')).resolves.toEqual(['job']);
    expect(runtime.getResource).toHaveBeenLastCalledWith('labels', { 'match[]': '{job="api"}' });
    runtime.getResource.mockResolvedValueOnce({ status: 'success', data: ['api'] });
    await expect(ds.metricFindQuery('label_values(job)')).resolves.toEqual([{ text: 'api' }]);
    expect(runtime.getResource).toHaveBeenLastCalledWith('label/job/values', undefined);
  });

  it('reports the API error message', async () => {
    runtime.getResource.mockRejectedValueOnce({ status: 400, data: { status: 'error', errorType: 'bad_data', error: 'invalid parameter "match[]"' } });
    await expect(ds.getLabelNames('{')).rejects.toThrow('invalid parameter "match[]"');
  });
});
