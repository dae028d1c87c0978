import React from 'react';
import { vi } from 'vitest';

/**
 * A stand-in for @grafana/runtime, which only works inside Grafana. Tests
 * set dataSources and dataSourceInstance before rendering.
 */
export const runtime = {
  dataSources: [] as Array<{ uid: string; name: string; type: string }>,
  dataSourceInstance: undefined as unknown,
  getResource: vi.fn(),
};

export function runtimeModule() {
  return {
    config: { appSubUrl: '' },
    PluginPage: ({ children }: { children: React.ReactNode }) => <div data-testid="plugin-page">{children}</div>,
    getDataSourceSrv: () => ({
      getList: () => runtime.dataSources,
      get: async () => runtime.dataSourceInstance,
    }),
    getTemplateSrv: () => ({ replace: (s: string) => s }),
    DataSourceWithBackend: class {
      uid: string;
      type: string;
      annotations: unknown;
      constructor(settings: { uid: string; type: string }) {
        this.uid = settings.uid;
        this.type = settings.type;
      }
      getResource(path: string, params?: Record<string, string>) {
        return runtime.getResource(path, params);
      }
    },
  };
}
