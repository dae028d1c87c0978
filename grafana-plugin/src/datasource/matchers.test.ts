import { describe, expect, it } from 'vitest';

import { buildSelector, LabelMatcher, parseSelector } from './matchers';

describe('buildSelector', () => {
  it.each<[LabelMatcher[], string]>([
    [[], ''],
    [[{ name: 'job', op: '=', value: 'api' }], '{job="api"}'],
    [
      [
        { name: '__name__', op: '=', value: 'up' },
        { name: 'instance', op: '=~', value: 'a|b' },
        { name: 'env', op: '!=', value: 'dev' },
        { name: 'zone', op: '!~', value: 'eu.*' },
      ],
      '{__name__="up", instance=~"a|b", env!="dev", zone!~"eu.*"}',
    ],
    [[{ name: 'path', op: '=', value: 'say "hi"\\' }], '{path="say \\"hi\\"\\\\"}'],
    [[{ name: '', op: '=', value: 'incomplete' }], ''],
  ])('%j -> %s', (ms, want) => {
    expect(buildSelector(ms)).toBe(want);
  });
});

describe('parseSelector', () => {
  it('round-trips what buildSelector writes', () => {
    const ms: LabelMatcher[] = [
      { name: 'job', op: '=~', value: 'a|"b"' },
      { name: 'x', op: '!=', value: '' },
    ];
    expect(parseSelector(buildSelector(ms))).toEqual(ms);
  });
  it('reads a metric name with matchers', () => {
    expect(parseSelector('http_requests{job="api"}')).toEqual([
      { name: '__name__', op: '=', value: 'http_requests' },
      { name: 'job', op: '=', value: 'api' },
    ]);
  });
  it('reads an empty selector', () => {
    expect(parseSelector('  ')).toEqual([]);
    expect(parseSelector('{}')).toEqual([]);
  });
  it('gives up on selectors it cannot represent', () => {
    expect(parseSelector('{job=api}')).toBeUndefined();
    expect(parseSelector('rate(x[5m])')).toBeUndefined();
  });
});
