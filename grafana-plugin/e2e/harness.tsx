import React from 'react';
import { createRoot } from 'react-dom/client';
import { createTheme } from '@grafana/data';
import { GlobalStyles, ThemeContext } from '@grafana/ui';

import { AnomaliesPage } from '../src/pages/AnomaliesPage';

const theme = createTheme({ colors: { mode: 'dark' } });

createRoot(document.getElementById('root')!).render(
  <ThemeContext.Provider value={theme}>
    <GlobalStyles />
    <div style={{ background: theme.colors.background.canvas, color: theme.colors.text.primary, minHeight: '100vh' }}>
      <AnomaliesPage />
    </div>
  </ThemeContext.Provider>
);
