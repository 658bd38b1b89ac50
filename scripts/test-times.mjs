// A node:test reporter for scripts/test.sh: one line per test file, "<wall seconds>\t<file>\t<pass|fail>",
// from the file's own test:complete event (the runner reports each file as a test of its own, its
// duration the subprocess's wall time: set-up, tests and teardown).
export default async function* fileTimes(source) {
  for await (const e of source) {
    if (e.type === 'test:complete' && e.data.nesting === 0 && e.data.name === e.data.file)
      yield `${(e.data.details.duration_ms / 1000).toFixed(1)}\t${e.data.file}\t${e.data.details.passed ? 'pass' : 'fail'}\n`;
  }
}
