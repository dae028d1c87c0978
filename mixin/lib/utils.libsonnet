// Small helpers shared by alerts, rules and dashboards.
{
  // 'a, b' from ['a', 'b'].
  labelList(labels):: std.join(', ', labels),

  // The runbook URL of an alert.
  runbookURL(config, alertName):: config.runbookURLPattern % std.asciiLower(alertName),

  // Adds runbook_url to every alert of every group.
  withRunbooks(config, groups):: [
    g {
      rules: [
        r + (if std.objectHas(r, 'alert') then {
               annotations+: { runbook_url: $.runbookURL(config, r.alert) },
             } else {})
        for r in g.rules
      ],
    }
    for g in groups
  ],

  // Joins non-empty matcher strings with commas.
  matchers(parts):: std.join(',', [p for p in parts if p != '']),
}
