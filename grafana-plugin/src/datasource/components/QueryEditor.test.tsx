import React, { useState } from 'react';
import { render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';

import { DataSource } from '../datasource';
import { SMQuery } from '../types';
import { QueryEditor } from './QueryEditor';

function fakeDatasource() {
  return {
    getLabelNames: vi.fn(async () => ['__name__', 'instance', 'job']),
    getLabelValues: vi.fn(async (name: string) => (name === 'job' ? ['api', 'worker'] : ['x'])),
  };
}

function renderEditor(initial: SMQuery, ds = fakeDatasource()) {
  const onRunQuery = vi.fn();
  const changes: SMQuery[] = [];
  function Harness() {
    const [q, setQ] = useState(initial);
    return (
      <QueryEditor
        query={q}
        datasource={ds as unknown as DataSource}
        onRunQuery={onRunQuery}
        onChange={(next) => {
          changes.push(next);
          setQ(next);
        }}
      />
    );
  }
  render(<Harness />);
  return { ds, onRunQuery, last: () => changes[changes.length - 1] };
}

// Combobox menus are virtualised and jsdom has no layout, so nothing would
// render: render every option instead.
vi.mock('@tanstack/react-virtual', () => ({
  useVirtualizer: ({ count }: { count: number }) => ({
    getVirtualItems: () => Array.from({ length: count }, (_, i) => ({ index: i, key: i, start: i * 32, size: 32, end: (i + 1) * 32, lane: 0 })),
    getTotalSize: () => count * 32,
    measureElement: () => {},
    scrollToIndex: () => {},
  }),
}));

describe('QueryEditor', () => {
  it('switches the query type and shows the direction filter for anomalies', async () => {
    const { last, onRunQuery } = renderEditor({ refId: 'A', queryType: 'series', matchers: '{job="api"}' });
    expect(screen.queryByText('Direction')).not.toBeInTheDocument();
    await userEvent.click(screen.getByLabelText('Anomalies'));
    expect(last().queryType).toBe('anomalies');
    expect(onRunQuery).toHaveBeenCalled();
    await userEvent.click(screen.getByLabelText('Down'));
    expect(last().direction).toBe('down');
    await userEvent.click(screen.getByLabelText('Open'));
    expect(last().state).toBe('open');
    expect(last().matchers).toBe('{job="api"}');
  });

  it('shows existing matchers as filter rows', () => {
    renderEditor({ refId: 'A', queryType: 'series', matchers: 'http_requests{job="api"}' });
    expect(screen.getByLabelText('label name 1')).toHaveValue('__name__');
    expect(screen.getByLabelText('label value 1')).toHaveValue('http_requests');
    expect(screen.getByLabelText('label name 2')).toHaveValue('job');
    expect(screen.getByLabelText('label value 2')).toHaveValue('api');
  });

  it('suggests label names and values from the backend', async () => {
    const { ds, last } = renderEditor({ refId: 'A', queryType: 'series', matchers: '' });
    await userEvent.click(screen.getByRole('button', { name: /add filter/i }));
    await userEvent.click(screen.getByLabelText('label name 1'));
    await waitFor(() => expect(ds.getLabelNames).toHaveBeenCalled());
    await userEvent.click(await screen.findByRole('option', { name: 'job' }));
    await userEvent.click(screen.getByLabelText('label value 1'));
    await waitFor(() => expect(ds.getLabelValues).toHaveBeenCalledWith('job', undefined));
    await userEvent.click(await screen.findByRole('option', { name: 'worker' }));
    expect(last().matchers).toBe('{job="worker"}');
    expect(screen.getByLabelText('selector')).toHaveValue('{job="worker"}');
  });

  it('accepts a raw selector and removes rows', async () => {
    const { last } = renderEditor({ refId: 'A', queryType: 'series', matchers: '{job="api"}' });
    const input = screen.getByLabelText('selector');
    await userEvent.clear(input);
    await userEvent.type(input, '{{instance=~"a|b"}');
    await userEvent.tab();
    expect(last().matchers).toBe('{instance=~"a|b"}');
    expect(screen.getByLabelText('label name 1')).toHaveValue('instance');
    await userEvent.click(screen.getByLabelText('remove matcher 1'));
    expect(last().matchers).toBe('');
    expect(screen.getByText('Series queries need a selector')).toBeInTheDocument();
  });

  it('sets score-only fields for alert rules', async () => {
    const { last } = renderEditor({ refId: 'A', queryType: 'series', matchers: '{job="api"}' });
    await userEvent.click(screen.getByLabelText('Score only'));
    expect(last().fields).toEqual(['score']);
  });

  it('switches series queries to instant results and back', async () => {
    const { last, onRunQuery } = renderEditor({ refId: 'A', queryType: 'series', matchers: '{job="api"}' });
    await userEvent.click(screen.getByLabelText('Instant'));
    expect(last().instant).toBe(true);
    expect(onRunQuery).toHaveBeenCalled();
    await userEvent.click(screen.getByLabelText('Range'));
    expect(last().instant).toBe(false);
    expect(last().matchers).toBe('{job="api"}');
  });
});
