// ESLint (flat config): typescript-eslint's recommended rules over every TypeScript file, without
// type information (fast enough to run before every test run on two cores). Layout is prettier's
// job (npm run format), so no stylistic rule is on.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'build/', 'prebuilds/', 'bench-results/', 'src/bpf/layouts.generated.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `_`-prefixed names say "unused on purpose" (a callback's position, a destructured rest).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // `le ? buf.writeUInt16LE(n) : buf.writeUInt16BE(n)` is a statement the codecs use on purpose.
      '@typescript-eslint/no-unused-expressions': ['error', { allowTernary: true }],
      // A built-in required where it is used (a test's child process) is the same module as an import.
      '@typescript-eslint/no-require-imports': ['error', { allow: ['^node:'] }],
      // `let x = 0; try { x = read() } catch { ... }` initialises before a try on purpose; the
      // compiler's definite-assignment check is what catches a value used before it is set.
      'no-useless-assignment': 'off',
      // `any` is allowed outside the daemon, the admin API and the CLI (below).
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    // The daemon, the admin API and the CLI: their types are the contract (src/README.md).
    files: ['src/daemon/**/*.ts', 'src/api/**/*.ts', 'src/cli/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'error' },
  },
  {
    // Loaded at run time from a path that may be absent: the native addon (node-gyp-build) and
    // the benchmark tooling, which ships only with the source checkout.
    files: ['src/addon.ts', 'src/cli/main.ts'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['bin/**/*.js'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { require: 'readonly', process: 'readonly', console: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
