import '@mantine/core/styles.css';
import '@mantine/charts/styles.css';
import './app.css';
import { DEFAULT_THEME, MantineProvider, createTheme, type MantineColorsTuple } from '@mantine/core';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { SessionProvider } from './lib/session.tsx';

/**
 * Mantine's palettes with shades 5–9 darkened: those shades are used for text (light and outline
 * variants, alerts, badges) and for filled backgrounds under white text, and Mantine's defaults give
 * only 3–4.4:1 on white. These keep at least 4.5:1 (WCAG AA; axe finds no serious violations).
 */
function darkened(
  name: keyof typeof DEFAULT_THEME.colors,
  dark: [string, string, string, string, string],
): MantineColorsTuple {
  const base = DEFAULT_THEME.colors[name]!;
  return [base[0], base[1], base[2], base[3], base[4], ...dark] as unknown as MantineColorsTuple;
}

// Darker shades than Mantine's defaults for filled buttons and text on white: WCAG AA contrast.
const theme = createTheme({
  primaryColor: 'blue',
  primaryShade: 8,
  colors: {
    blue: darkened('blue', ['#1f62b3', '#1864ab', '#1a5aa0', '#1c4fa0', '#163f80']),
    green: darkened('green', ['#2a7236', '#256b31', '#1f5f2a', '#1b5e20', '#144a18']),
    red: darkened('red', ['#b52a2a', '#a51d1d', '#961a1a', '#861717', '#701212']),
    orange: darkened('orange', ['#9a4a00', '#8a4b00', '#7a4100', '#6b3900', '#5c3100']),
    yellow: darkened('yellow', ['#8a6100', '#7a5600', '#6b4b00', '#5c4100', '#4d3700']),
  },
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
