#!/usr/bin/env node
'use strict';
// Exit codes: 0 success, 1 failure, 2 usage error (XD_ERR_USAGE), other codes as a command documents.
require('../dist/src/cli/main.js')
  .main(process.argv.slice(2))
  .then(
    (code) => {
      process.exitCode = code ?? 0;
    },
    (err) => {
      process.stderr.write(`xdirector: ${err && err.message ? err.message : err}\n`);
      process.exitCode = err && err.code === 'XD_ERR_USAGE' ? 2 : 1;
    },
  );
