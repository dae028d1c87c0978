// Stands in for @grafana/runtime when the app page is rendered outside
// Grafana (headless browser check): resource calls of the data source go
// straight to the Sentinel Mesh API through serve.mjs.
import React from 'react';

export const config = { appSubUrl: '' };

export function PluginPage({ children }: { children: React.ReactNode }) {
  return (
    <div style={{ padding: 24 }}>
      <h1>Sentinel Mesh · Open anomalies</h1>
      {children}
    </div>
  );
}

export function getTemplateSrv() {
  return { replace: (s: string) => s };
}

export class DataSourceWithBackend {
  uid: string;
  type: string;
  name: string;
  annotations: unknown;
  constructor(settings: { uid: string; type: string; name: string }) {
    this.uid = settings.uid;
    this.type = settings.type;
    this.name = settings.name;
  }
  async getResource(path: string, params?: Record<string, string>) {
    const res = await fetch(`/api/v1/${path}?${new URLSearchParams(params ?? {})}`);
    const body = await res.json();
    if (!res.ok) {
      throw { status: res.status, data: body };
    }
    return body;
  }
}

const settings = { uid: 'sm', name: 'Sentinel Mesh', type: 'sentinelmesh-anomaly-datasource', jsonData: {} };
let instance: unknown;

export function getDataSourceSrv() {
  return {
    getList: () => [settings],
    get: async () => {
      if (!instance) {
        const { DataSource } = await import('../src/datasource/datasource');
        instance = new DataSource(settings as never);
      }
      return instance;
    },
  };
}
