import { status } from '@grpc/grpc-js';
import {
  ConflictError, DragonflyError, errorBody, fromGrpcError, httpStatusOf, InvalidArgumentError, NotFoundError,
  PermissionDeniedError, toGrpcError, UnauthenticatedError,
} from '../../../services/common/errors';

describe('typed errors map once to HTTP and gRPC', () => {
  it.each([
    [new InvalidArgumentError('bad'), 400, status.INVALID_ARGUMENT],
    [new UnauthenticatedError('who'), 401, status.UNAUTHENTICATED],
    [new PermissionDeniedError('no'), 403, status.PERMISSION_DENIED],
    [new NotFoundError('gone'), 404, status.NOT_FOUND],
    [new ConflictError('dup'), 409, status.ALREADY_EXISTS],
  ])('%s', (err, http, grpc) => {
    expect(httpStatusOf(err)).toBe(http);
    expect(toGrpcError(err).code).toBe(grpc);
    expect(errorBody(err)).toMatchObject({ message: err.message, kind: err.kind });
    const back = fromGrpcError(toGrpcError(err));
    expect(back).toBeInstanceOf(DragonflyError);
    expect(back.kind).toBe(err.kind);
    expect(back.message).toBe(err.message);
  });

  it('unknown errors are 500 and do not leak their text over HTTP', () => {
    expect(httpStatusOf(new Error('secret'))).toBe(500);
    expect(errorBody(new Error('secret'))).toEqual({ message: 'internal error', kind: 'Internal' });
    expect(toGrpcError(new Error('boom')).code).toBe(status.INTERNAL);
  });

  it('details travel in the HTTP body', () => {
    expect(errorBody(new InvalidArgumentError('invalid body', { errors: [{ path: 'name' }] }))).toEqual({
      message: 'invalid body', kind: 'InvalidArgument', errors: [{ path: 'name' }],
    });
  });
});
