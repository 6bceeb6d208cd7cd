import '@mantine/core/styles.css';
import './app.css';
import { MantineProvider, createTheme } from '@mantine/core';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { SessionProvider } from './lib/session.tsx';

// Darker shades than Mantine's defaults for filled buttons and text on white: WCAG AA contrast.
const theme = createTheme({
  primaryColor: 'blue',
  primaryShade: 8,
  fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif',
  focusRing: 'always',
  // No asterisk after labels: it becomes part of the label's text (tests and some screen readers read
  // "Password *"); required inputs keep the required attribute, optional ones say "(optional)".
  components: Object.fromEntries(
    [
      'TextInput',
      'PasswordInput',
      'NumberInput',
      'Select',
      'NativeSelect',
      'Textarea',
      'MultiSelect',
      'InputWrapper',
    ].map((name) => [name, { defaultProps: { withAsterisk: false } }]),
  ),
});

// WCAG AA contrast (axe finds no serious violations): Mantine's default error red, dimmed grey and
// placeholder grey are too pale on white; these keep at least 4.5:1 for normal-size text.
const contrastVariables = () => ({
  variables: {},
  light: {
    '--mantine-color-error': '#b21f1f',
    '--mantine-color-dimmed': '#545b62',
    '--mantine-color-placeholder': '#545b62',
  },
  dark: {},
});

const queryClient = new QueryClient({
  defaultOptions: { queries: { retry: 1, refetchOnWindowFocus: false } },
});

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <MantineProvider theme={theme} defaultColorScheme="light" cssVariablesResolver={contrastVariables}>
      <QueryClientProvider client={queryClient}>
        <SessionProvider>
          <App />
        </SessionProvider>
      </QueryClientProvider>
    </MantineProvider>
  </StrictMode>,
);
