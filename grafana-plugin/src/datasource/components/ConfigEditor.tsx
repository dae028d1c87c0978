import React, { ChangeEvent } from 'react';
import { DataSourcePluginOptionsEditorProps, SelectableValue } from '@grafana/data';
import { Field, FieldSet, Input, RadioButtonGroup, SecretInput } from '@grafana/ui';

import { AuthType, SMJsonData, SMSecureJsonData } from '../types';

export type Props = DataSourcePluginOptionsEditorProps<SMJsonData, SMSecureJsonData>;

const AUTH_OPTIONS: Array<SelectableValue<AuthType>> = [
  { label: 'No authentication', value: 'none' },
  { label: 'Basic auth', value: 'basic' },
  { label: 'Bearer token', value: 'bearer' },
];

/**
 * Settings of a Sentinel Mesh data source: URL, tenant and authentication.
 * The password and token go to secureJsonData only; Grafana encrypts them
 * and never sends them back (secureJsonFields just says they are set).
 */
export function ConfigEditor({ options, onOptionsChange }: Props) {
  const { jsonData, secureJsonFields } = options;
  const secureJsonData = options.secureJsonData ?? {};
  const authType = jsonData.authType ?? 'none';

  const setJson = <K extends keyof SMJsonData>(key: K, value: SMJsonData[K]) =>
    onOptionsChange({ ...options, jsonData: { ...jsonData, [key]: value } });

  const setSecret = (key: keyof SMSecureJsonData) => (e: ChangeEvent<HTMLInputElement>) =>
    onOptionsChange({ ...options, secureJsonData: { ...secureJsonData, [key]: e.target.value } });

  const resetSecret = (key: keyof SMSecureJsonData) => () =>
    onOptionsChange({
      ...options,
      secureJsonFields: { ...secureJsonFields, [key]: false },
      secureJsonData: { ...secureJsonData, [key]: '' },
    });

  return (
    <>
      <FieldSet label="Connection">
        <Field label="URL" description="Base URL of Sentinel Mesh, e.g. http://sentinel-mesh:9464" required>
          <Input
            id="sm-url"
            width={60}
            value={options.url ?? ''}
            placeholder="http://sentinel-mesh:9464"
            onChange={(e: ChangeEvent<HTMLInputElement>) => onOptionsChange({ ...options, url: e.target.value })}
          />
        </Field>
        <Field label="Tenant" description="Sent as X-Scope-OrgID; only this tenant's series and anomalies are shown. Empty shows all.">
          <Input
            id="sm-tenant"
            width={40}
            value={jsonData.tenant ?? ''}
            placeholder="all tenants"
            onChange={(e: ChangeEvent<HTMLInputElement>) => setJson('tenant', e.target.value)}
          />
        </Field>
        <Field label="Timeout" description="Seconds per request to Sentinel Mesh (default 30).">
          <Input
            id="sm-timeout"
            type="number"
            width={20}
            min={1}
            max={600}
            value={jsonData.timeoutSeconds ?? ''}
            placeholder="30"
            onChange={(e: ChangeEvent<HTMLInputElement>) =>
              setJson('timeoutSeconds', e.target.value === '' ? undefined : Number(e.target.value))
            }
          />
        </Field>
      </FieldSet>
      <FieldSet label="Authentication">
        <Field label="Method">
          <RadioButtonGroup<AuthType>
            options={AUTH_OPTIONS}
            value={authType}
            onChange={(v) => setJson('authType', v)}
          />
        </Field>
        {authType === 'basic' && (
          <>
            <Field label="User" required>
              <Input
                id="sm-basic-user"
                width={40}
                value={jsonData.basicAuthUser ?? ''}
                onChange={(e: ChangeEvent<HTMLInputElement>) => setJson('basicAuthUser', e.target.value)}
              />
            </Field>
            <Field label="Password" required>
              <SecretInput
                id="sm-basic-password"
                width={40}
                isConfigured={!!secureJsonFields?.basicAuthPassword}
                value={secureJsonData.basicAuthPassword ?? ''}
                onChange={setSecret('basicAuthPassword')}
                onReset={resetSecret('basicAuthPassword')}
              />
            </Field>
          </>
        )}
        {authType === 'bearer' && (
          <Field label="Token" required>
            <SecretInput
              id="sm-bearer-token"
              width={60}
              isConfigured={!!secureJsonFields?.bearerToken}
              value={secureJsonData.bearerToken ?? ''}
              onChange={setSecret('bearerToken')}
              onReset={resetSecret('bearerToken')}
            />
          </Field>
        )}
      </FieldSet>
    </>
  );
}
