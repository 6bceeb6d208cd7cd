import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The browser app. `vite build` writes packages/web/dist, which `holdfast serve` serves on the API's
// own port (packages/server/src/http/web-static.ts). `vite` (dev) proxies the API to a running node.
export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Hashed file names under assets/: the server caches them as immutable.
    assetsDir: 'assets',
    chunkSizeWarningLimit: 1500,
  },
  server: {
    port: 5173,
    proxy: {
      '/api': { target: process.env.HOLDFAST_URL ?? 'http://localhost:8080', changeOrigin: false },
      '/health': { target: process.env.HOLDFAST_URL ?? 'http://localhost:8080' },
    },
  },
});
