// Error codes of the tooling (namespace lab, benchmarks), kept out of the product's catalogue
// in src/errors.ts. The error itself is the product's CodedError: a stable code, a chained
// message, a cause.
import { chainMessage, CodedError } from '../src/errors';

/** Each tooling code and what it means. */
export const toolCodes = {
  XD_ERR_EXEC: 'an external command failed (command line, exit code and stderr in the message)',
  XD_ERR_LAB: 'the namespace lab could not be built, used or torn down',
  XD_ERR_MARIADB: 'a MariaDB server started by the lab failed to start, stop, answer or replicate',
  XD_ERR_BENCH: 'a benchmark could not be set up or run (the step and the cause in the message)',
  XD_ERR_BENCH_NO_TRAFFIC:
    'a packet-rate run delivered nothing to the receivers: the path is broken, the result would be a fake zero',
} as const;

export type ToolErrorCode = keyof typeof toolCodes;

export class ToolError extends CodedError<ToolErrorCode> {}

/** "outer: inner" chaining, as src/errors.ts wrap() does for the product's codes. */
export function toolWrap(
  code: ToolErrorCode,
  context: string,
  err: unknown,
  detail?: Record<string, unknown>,
): ToolError {
  return new ToolError(code, chainMessage(context, err), { cause: err, detail });
}
