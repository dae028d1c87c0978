import React, { ChangeEvent, useCallback, useEffect, useState } from 'react';
import { QueryEditorProps, SelectableValue } from '@grafana/data';
import { Button, Combobox, ComboboxOption, InlineField, InlineFieldRow, Input, RadioButtonGroup, Stack } from '@grafana/ui';

import { DataSource } from '../datasource';
import { buildSelector, LabelMatcher, MATCH_OPS, MatchOp, parseSelector } from '../matchers';
import { AnomalyState, Direction, QueryType, SMJsonData, SMQuery } from '../types';

export type Props = QueryEditorProps<DataSource, SMQuery, SMJsonData>;

const QUERY_TYPES: Array<SelectableValue<QueryType>> = [
  { label: 'Series scores', value: 'series', description: 'Observed value, expected band and anomaly score over time' },
  { label: 'Anomalies', value: 'anomalies', description: 'Table of anomalies' },
  { label: 'Incidents', value: 'incidents', description: 'Anomalies of one workload grouped' },
];

const DIRECTIONS: Array<SelectableValue<Direction>> = [
  { label: 'Both', value: 'both' },
  { label: 'Up', value: 'up', icon: 'arrow-up' },
  { label: 'Down', value: 'down', icon: 'arrow-down' },
];

const STATES: Array<SelectableValue<AnomalyState>> = [
  { label: 'All', value: 'all' },
  { label: 'Open', value: 'open' },
  { label: 'Closed', value: 'closed' },
];

const FIELD_SETS: Array<SelectableValue<'all' | 'score'>> = [
  { label: 'All', value: 'all', description: 'value, expected, band and score' },
  { label: 'Score only', value: 'score', description: 'for alert rules' },
];

const RESULTS: Array<SelectableValue<'range' | 'instant'>> = [
  { label: 'Range', value: 'range', description: 'every result in the time range, one time series per series' },
  { label: 'Instant', value: 'instant', description: 'the latest result of each series, as numbers' },
];

const toOptions = (vs: string[]): ComboboxOption[] => vs.map((v) => ({ label: v, value: v }));

/** Filters option lists by what the user typed. */
const filterBy = (input: string) => (o: ComboboxOption) => !input || String(o.value).toLowerCase().includes(input.toLowerCase());

export function QueryEditor({ query, onChange, onRunQuery, datasource }: Props) {
  const queryType = query.queryType ?? 'series';
  const [rows, setRows] = useState<LabelMatcher[] | undefined>(() => parseSelector(query.matchers ?? ''));
  const [raw, setRaw] = useState(query.matchers ?? '');

  // Follow selectors set from outside the editor (Explore links, dashboards).
  useEffect(() => {
    const m = query.matchers ?? '';
    if (m !== raw && m !== buildSelector(rows ?? [])) {
      setRaw(m);
      setRows(parseSelector(m));
    }
    // Only external changes of the query matter here.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [query.matchers]);

  const update = useCallback(
    (patch: Partial<SMQuery>, run = true) => {
      onChange({ ...query, ...patch });
      if (run) {
        onRunQuery();
      }
    },
    [query, onChange, onRunQuery]
  );

  const setMatchers = (next: LabelMatcher[]) => {
    setRows(next);
    const sel = buildSelector(next);
    setRaw(sel);
    update({ matchers: sel });
  };

  const setRow = (i: number, patch: Partial<LabelMatcher>) =>
    setMatchers((rows ?? []).map((r, j) => (j === i ? { ...r, ...patch } : r)));

  /** The selector of the other rows narrows value suggestions. */
  const otherSelector = (i: number) => buildSelector((rows ?? []).filter((r, j) => j !== i && r.value !== ''));

  return (
    <Stack direction="column" gap={1}>
      <InlineFieldRow>
        <InlineField label="Query type" labelWidth={14}>
          <RadioButtonGroup<QueryType>
            options={queryType === 'annotations' ? [...QUERY_TYPES, { label: 'Annotations', value: 'annotations' }] : QUERY_TYPES}
            value={queryType}
            onChange={(v) => update({ queryType: v })}
          />
        </InlineField>
      </InlineFieldRow>

      {rows !== undefined &&
        rows.map((row, i) => (
          <InlineFieldRow key={i}>
            <InlineField label={i === 0 ? 'Label filters' : ''} labelWidth={14}>
              <Combobox
                aria-label={`label name ${i + 1}`}
                width={25}
                value={row.name || null}
                placeholder="label"
                createCustomValue
                options={async (input) => toOptions(await datasource.getLabelNames(otherSelector(i) || undefined)).filter(filterBy(input))}
                onChange={(o: ComboboxOption) => setRow(i, { name: String(o.value) })}
              />
            </InlineField>
            <Combobox<MatchOp>
              aria-label={`operator ${i + 1}`}
              width={8}
              value={row.op}
              options={MATCH_OPS.map((op) => ({ label: op, value: op }))}
              onChange={(o) => setRow(i, { op: o.value })}
            />
            <Combobox
              aria-label={`label value ${i + 1}`}
              width={30}
              value={row.value || null}
              placeholder="value"
              createCustomValue
              options={async (input) =>
                row.name ? toOptions(await datasource.getLabelValues(row.name, otherSelector(i) || undefined)).filter(filterBy(input)) : []
              }
              onChange={(o: ComboboxOption) => setRow(i, { value: String(o.value) })}
            />
            <Button
              aria-label={`remove matcher ${i + 1}`}
              variant="secondary"
              icon="times"
              onClick={() => setMatchers(rows.filter((_, j) => j !== i))}
            />
          </InlineFieldRow>
        ))}
      {rows !== undefined && (
        <InlineFieldRow>
          <InlineField label={rows.length === 0 ? 'Label filters' : ''} labelWidth={14}>
            <Button variant="secondary" icon="plus" onClick={() => setRows([...rows, { name: '', op: '=', value: '' }])}>
              Add filter
            </Button>
          </InlineField>
        </InlineFieldRow>
      )}
      <InlineFieldRow>
        <InlineField
          label="Selector"
          labelWidth={14}
          grow
          tooltip="PromQL series selector; edit it directly for selectors the filter rows cannot show"
          invalid={queryType === 'series' && raw.trim() === ''}
          error="Series queries need a selector"
        >
          <Input
            aria-label="selector"
            value={raw}
            placeholder='{job="api", namespace="prod"}'
            onChange={(e: ChangeEvent<HTMLInputElement>) => setRaw(e.target.value)}
            onBlur={() => {
              setRows(parseSelector(raw));
              update({ matchers: raw });
            }}
          />
        </InlineField>
      </InlineFieldRow>

      {queryType === 'series' && (
        <InlineFieldRow>
          <InlineField label="Fields" labelWidth={14}>
            <RadioButtonGroup<'all' | 'score'>
              options={FIELD_SETS}
              value={query.fields?.length === 1 && query.fields[0] === 'score' ? 'score' : 'all'}
              onChange={(v) => update({ fields: v === 'score' ? ['score'] : [] })}
            />
          </InlineField>
          <InlineField label="Results" labelWidth={10} tooltip="Instant: one number per series, which an alert threshold compares without a Reduce">
            <RadioButtonGroup<'range' | 'instant'>
              options={RESULTS}
              value={query.instant ? 'instant' : 'range'}
              onChange={(v) => update({ instant: v === 'instant' })}
            />
          </InlineField>
          <InlineField label="Unit" labelWidth={8} tooltip="Grafana unit of the value and band, e.g. reqps, bytes">
            <Input
              aria-label="unit"
              width={16}
              value={query.unit ?? ''}
              onChange={(e: ChangeEvent<HTMLInputElement>) => update({ unit: e.target.value }, false)}
              onBlur={onRunQuery}
            />
          </InlineField>
        </InlineFieldRow>
      )}

      {queryType !== 'series' && (
        <InlineFieldRow>
          <InlineField label="Direction" labelWidth={14}>
            <RadioButtonGroup<Direction>
              options={DIRECTIONS}
              value={query.direction ?? 'both'}
              onChange={(v) => update({ direction: v })}
            />
          </InlineField>
          <InlineField label="State" labelWidth={8}>
            <RadioButtonGroup<AnomalyState> options={STATES} value={query.state ?? 'all'} onChange={(v) => update({ state: v })} />
          </InlineField>
          <InlineField label="Limit" labelWidth={8}>
            <Input
              aria-label="limit"
              type="number"
              width={10}
              min={0}
              value={query.limit ?? ''}
              onChange={(e: ChangeEvent<HTMLInputElement>) =>
                update({ limit: e.target.value === '' ? undefined : Number(e.target.value) }, false)
              }
              onBlur={onRunQuery}
            />
          </InlineField>
          {queryType === 'incidents' && (
            <InlineField label="Group by" labelWidth={10} tooltip="Comma-separated labels; empty uses the server's api.incident_group_by">
              <Input
                aria-label="group by"
                width={30}
                value={query.groupBy ?? ''}
                placeholder="namespace,workload,job"
                onChange={(e: ChangeEvent<HTMLInputElement>) => update({ groupBy: e.target.value }, false)}
                onBlur={onRunQuery}
              />
            </InlineField>
          )}
        </InlineFieldRow>
      )}
    </Stack>
  );
}
