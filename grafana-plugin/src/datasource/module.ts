import { DataSourcePlugin } from '@grafana/data';

import { ConfigEditor } from './components/ConfigEditor';
import { QueryEditor } from './components/QueryEditor';
import { DataSource } from './datasource';
import { SMJsonData, SMQuery, SMSecureJsonData } from './types';

export const plugin = new DataSourcePlugin<DataSource, SMQuery, SMJsonData, SMSecureJsonData>(DataSource)
  .setConfigEditor(ConfigEditor)
  .setQueryEditor(QueryEditor);
