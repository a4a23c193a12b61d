/** Parses request input with a zod schema; failures become 422 errors naming each field path. */
import { z } from 'zod';
import { FailedPreconditionError } from '../common/errors';

export interface FieldProblem {
  readonly path: string;
  readonly message: string;
}

export function problemsOf(error: z.ZodError): FieldProblem[] {
  const out: FieldProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ path: [...issue.path, key].join('.'), message: 'unknown field' });
      continue;
    }
    out.push({ path: issue.path.join('.') || '(body)', message: issue.message });
  }
  return out;
}

export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what = 'request body'): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const errors = problemsOf(result.error);
  throw new FailedPreconditionError(`invalid ${what}: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, { errors });
}
