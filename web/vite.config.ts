import { defineConfig } from 'vite';

// Preact's JSX through Vite's own transformer (tsconfig's jsxImportSource): no Babel preset needed.
// Hashed file names under /assets/ let elsed cache them for a year; index.html is never cached.
export default defineConfig({
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  resolve: {
    alias: { react: 'preact/compat', 'react-dom': 'preact/compat' },
  },
  server: {
    // `npm run dev` against a running `elsed serve` on the default address.
    proxy: { '/api': 'http://127.0.0.1:8080', '/healthz': 'http://127.0.0.1:8080' },
  },
});
