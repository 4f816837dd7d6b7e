// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';

/**
 * The layering (docs/ARCHITECTURE.md): core and ports are pure and talk to the world only
 * through ports; the CLI reaches stores through app/ (the store factory) and ports, never an
 * adapter. `import type` counts too: a type import still couples the layers.
 */
const layering = {
  files: ['src/**/*.ts'],
  plugins: { 'import-x': importX },
  settings: {
    // The sources import `./x.js` for `./x.ts` (NodeNext): resolve them to the .ts file, or an
    // unresolved import would pass the rule unchecked.
    'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.js', '.json'], extensionAlias: { '.js': ['.ts', '.js'] } })],
  },
  rules: {
    'import-x/no-restricted-paths': [
      'error',
      {
        zones: [
          {
            target: ['./src/core', './src/ports'],
            from: ['./src/adapters', './src/config', './src/app', './src/cli'],
            message: 'core and ports must not depend on adapters, config, app or cli: define what they need in core or ports.',
          },
          {
            target: './src/cli',
            from: './src/adapters',
            message: 'the CLI reaches stores through app/stores.ts (openStores) and the ports, never an adapter.',
          },
        ],
      },
    ],
  },
};

export default tseslint.config(
  { ignores: ['dist/**', '.test-dist*/**', 'node_modules/**', '.cache/**', 'coverage/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  layering,
  {
    // The status page's script runs in the browser as a plain script (no bundler, no modules).
    files: ['assets/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { document: 'readonly', fetch: 'readonly', setTimeout: 'readonly' } },
  },
);
