// Minimal, dependency-free builders for Grafana dashboard JSON (schemaVersion 39).
{
  local ds = { type: 'prometheus', uid: '${datasource}' },

  target(expr, legend='', instant=false, format='time_series'):: {
    datasource: ds,
    expr: expr,
    legendFormat: legend,
    range: !instant,
    instant: instant,
    format: format,
  },

  local base(type, title, targets, description, w, h) = {
    type: type,
    title: title,
    description: description,
    datasource: ds,
    targets: [t { refId: std.char(65 + i) } for i in std.range(0, std.length(targets) - 1) for t in [targets[i]]],
    gridPos:: { w: w, h: h },
  },

  timeseries(title, targets, unit='short', description='', w=12, h=8, stack=false, min=null, max=null, overrides=[]):: base('timeseries', title, targets, description, w, h) {
    fieldConfig: {
      defaults: {
        unit: unit,
        [if min != null then 'min']: min,
        [if max != null then 'max']: max,
        custom: {
          drawStyle: 'line',
          lineWidth: 1,
          fillOpacity: if stack then 30 else 10,
          showPoints: 'never',
          spanNulls: false,
          stacking: { mode: if stack then 'normal' else 'none', group: 'A' },
        },
      },
      overrides: overrides,
    },
    options: {
      legend: { displayMode: 'table', placement: 'bottom', calcs: ['lastNotNull', 'max'] },
      tooltip: { mode: 'multi', sort: 'desc' },
    },
  },

  stat(title, targets, unit='short', description='', w=6, h=4, thresholds=null):: base('stat', title, targets, description, w, h) {
    fieldConfig: {
      defaults: {
        unit: unit,
        thresholds: if thresholds != null then thresholds else {
          mode: 'absolute',
          steps: [{ color: 'green', value: null }],
        },
      },
      overrides: [],
    },
    options: {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      colorMode: 'value',
      graphMode: 'area',
      textMode: 'auto',
    },
  },

  table(title, targets, description='', w=24, h=10, overrides=[], transformations=[]):: base('table', title, targets, description, w, h) {
    fieldConfig: { defaults: { custom: { filterable: true } }, overrides: overrides },
    options: { showHeader: true, cellHeight: 'sm' },
    transformations: transformations,
  },

  bargauge(title, targets, unit='short', description='', w=12, h=8, min=0, max=1, thresholds=null):: base('bargauge', title, targets, description, w, h) {
    fieldConfig: {
      defaults: {
        unit: unit,
        min: min,
        max: max,
        thresholds: thresholds,
      },
      overrides: [],
    },
    options: { orientation: 'horizontal', displayMode: 'gradient', reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false } },
  },

  row(title):: { type: 'row', title: title, collapsed: false, panels: [], gridPos:: { w: 24, h: 1 } },

  // Thresholds object with a red step at `threshold` (and yellow between warn and it).
  scoreThresholds(warn, crit):: {
    mode: 'absolute',
    steps: [
      { color: 'green', value: null },
      { color: 'orange', value: warn },
      { color: 'red', value: crit },
    ],
  },

  // Places panels left to right, wrapping at 24 columns, and numbers them.
  layout(panels)::
    local step(acc, p) =
      if p.type == 'row' then
        local y = acc.y + acc.rowH;
        acc { id: acc.id + 1, x: 0, y: y + 1, rowH: 0, out+: [p { id: acc.id, gridPos::: p.gridPos { x: 0, y: y } }] }
      else
        local wrap = acc.x + p.gridPos.w > 24;
        local x = if wrap then 0 else acc.x;
        local y = if wrap then acc.y + acc.rowH else acc.y;
        local rowH = if wrap then 0 else acc.rowH;
        acc { id: acc.id + 1, x: x + p.gridPos.w, y: y, rowH: std.max(rowH, p.gridPos.h), out+: [p { id: acc.id, gridPos::: p.gridPos { x: x, y: y } }] };
    std.foldl(step, panels, { id: 1, x: 0, y: 0, rowH: 0, out: [] }).out,

  datasourceVariable:: {
    name: 'datasource',
    label: 'Data source',
    type: 'datasource',
    query: 'prometheus',
    current: {},
    hide: 0,
    refresh: 1,
    regex: '',
  },

  queryVariable(name, label, query, multi=true, includeAll=true, hide=0):: {
    name: name,
    label: label,
    type: 'query',
    datasource: ds,
    query: { query: query, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
    definition: query,
    refresh: 2,
    sort: 1,
    multi: multi,
    includeAll: includeAll,
    [if includeAll then 'allValue']: '.*',
    current: {},
    hide: hide,
    regex: '',
  },

  textboxVariable(name, label, default='', description=''):: {
    name: name,
    label: label,
    description: description,
    type: 'textbox',
    query: default,
    current: { text: default, value: default },
    hide: 0,
  },

  dashboard(config, title, uidSuffix, panels, variables, annotations=[], description=''):: {
    uid: config.grafanaDashboardUIDPrefix + uidSuffix,
    title: title,
    description: description,
    tags: config.grafanaDashboardTags,
    editable: true,
    graphTooltip: 1,
    refresh: config.grafanaRefresh,
    timezone: config.grafanaTimezone,
    schemaVersion: 39,
    version: 1,
    time: { from: 'now-6h', to: 'now' },
    timepicker: {},
    fiscalYearStartMonth: 0,
    liveNow: false,
    links: [
      {
        title: 'Sentinel Mesh',
        type: 'dashboards',
        tags: config.grafanaDashboardTags,
        asDropdown: true,
        includeVars: true,
        keepTime: true,
      },
    ],
    templating: { list: [$.datasourceVariable] + variables },
    annotations: {
      list: [
        {
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        },
      ] + annotations,
    },
    panels: $.layout(panels),
  },
}
