import React, { useState } from 'react';
import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { DataSourceSettings } from '@grafana/data';
import { describe, expect, it, vi } from 'vitest';

import { SMJsonData, SMSecureJsonData } from '../types';
import { ConfigEditor } from './ConfigEditor';

type Options = DataSourceSettings<SMJsonData, SMSecureJsonData>;

function settings(patch: Partial<Options> = {}): Options {
  return {
    id: 1,
    uid: 'sm',
    orgId: 1,
    name: 'Sentinel Mesh',
    type: 'sentinelmesh-anomaly-datasource',
    typeName: 'Sentinel Mesh',
    typeLogoUrl: '',
    access: 'proxy',
    url: '',
    user: '',
    database: '',
    basicAuth: false,
    basicAuthUser: '',
    isDefault: false,
    jsonData: {},
    secureJsonFields: {},
    readOnly: false,
    withCredentials: false,
    ...patch,
  } as Options;
}

/** Renders the editor as Grafana does: controlled, keeping the latest options. */
function renderEditor(initial: Options) {
  const changes: Options[] = [];
  function Harness() {
    const [opts, setOpts] = useState(initial);
    return (
      <ConfigEditor
        options={opts}
        onOptionsChange={(o) => {
          changes.push(o);
          setOpts(o);
        }}
      />
    );
  }
  render(<Harness />);
  return { changes, last: () => changes[changes.length - 1] };
}

describe('ConfigEditor', () => {
  it('edits the URL and tenant', async () => {
    const { last } = renderEditor(settings());
    await userEvent.type(screen.getByPlaceholderText('http://sentinel-mesh:9464'), 'http://sm:9464');
    expect(last().url).toBe('http://sm:9464');
    await userEvent.type(screen.getByPlaceholderText('all tenants'), 'team-a');
    expect(last().jsonData.tenant).toBe('team-a');
    expect(last().url).toBe('http://sm:9464');
  });

  it('keeps the basic auth password in secureJsonData only', async () => {
    const { last } = renderEditor(settings({ url: 'http://sm' }));
    expect(screen.queryByLabelText('User')).not.toBeInTheDocument();
    await userEvent.click(screen.getByLabelText('Basic auth'));
    expect(last().jsonData.authType).toBe('basic');
    await userEvent.type(screen.getByLabelText(/^User/), 'grafana');
    await userEvent.type(screen.getByLabelText(/^Password/), 'hunter2');
    const o = last();
    expect(o.jsonData.basicAuthUser).toBe('grafana');
    expect(o.secureJsonData?.basicAuthPassword).toBe('hunter2');
    expect(JSON.stringify(o.jsonData)).not.toContain('hunter2');
  });

  it('shows a configured token without its value and resets it', async () => {
    const { last } = renderEditor(settings({ url: 'http://sm', jsonData: { authType: 'bearer' }, secureJsonFields: { bearerToken: true } }));
    expect(screen.getByDisplayValue('configured')).toBeDisabled();
    await userEvent.click(screen.getByRole('button', { name: /reset/i }));
    expect(last().secureJsonFields.bearerToken).toBe(false);
    await userEvent.type(screen.getByLabelText(/^Token/), 'tok');
    expect(last().secureJsonData?.bearerToken).toBe('tok');
    expect(JSON.stringify(last().jsonData)).not.toContain('tok"');
  });

  it('does not call onOptionsChange on first render', () => {
    const spy = vi.fn();
    render(<ConfigEditor options={settings()} onOptionsChange={spy} />);
    expect(spy).not.toHaveBeenCalled();
  });
});
