import React from 'react';
import { AppRootProps } from '@grafana/data';

import { AnomaliesPage } from '../pages/AnomaliesPage';

/** The app has one page: open anomalies across Sentinel Mesh data sources. */
export function App(_props: AppRootProps) {
  return <AnomaliesPage />;
}
