// Error codes of the tooling (namespace lab, benchmarks), kept out of the product's catalogue
// in src/errors.ts. Same shape as XdError: a stable code, a chained message, a cause.

const codes = {
  XD_ERR_EXEC: 'an external command failed (command line, exit code and stderr in the message)',
  XD_ERR_LAB: 'the namespace lab could not be built, used or torn down',
  XD_ERR_MARIADB: 'a MariaDB server started by the lab failed to start, stop, answer or replicate',
  XD_ERR_BENCH: 'a benchmark could not be set up or run (the step and the cause in the message)',
  XD_ERR_BENCH_NO_TRAFFIC: 'a packet-rate run delivered nothing to the receivers: the path is broken, the result would be a fake zero',
} as const;

export type ToolErrorCode = keyof typeof codes;

export class ToolError extends Error {
  readonly code: ToolErrorCode;
  readonly detail: Record<string, unknown>;

  constructor(code: ToolErrorCode, message: string, opts: { cause?: unknown; detail?: Record<string, unknown> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ToolError';
    this.code = code;
    this.detail = opts.detail ?? {};
  }
}

/** "outer: inner" chaining, as src/errors.ts wrap() does for the product's codes. */
export function toolWrap(code: ToolErrorCode, context: string, err: unknown, detail?: Record<string, unknown>): ToolError {
  const inner = err instanceof Error ? err.message : String(err);
  return new ToolError(code, `${context}: ${inner}`, { cause: err, detail });
}
