import { SigninLimiter, SigninRateLimitedError } from '../../../services/manager/signin-limiter';

describe('SigninLimiter', () => {
  let now = 1_000_000;
  const clock = () => now;

  test('per-name limit with Retry-After counting down to the window end; success clears the name', () => {
    const l = new SigninLimiter({ perName: 2, perAddress: 100, windowMs: 60_000, maxTracked: 100 }, clock);
    l.failed('root', '10.0.0.1');
    l.check('root', '10.0.0.1');
    l.failed('root', '10.0.0.2');
    expect(() => l.check('root', '10.0.0.3')).toThrow(SigninRateLimitedError);
    now += 30_000;
    try {
      l.check('root', '10.0.0.3');
      throw new Error('not limited');
    } catch (err) {
      expect((err as SigninRateLimitedError).retryAfterSeconds).toBe(30);
    }
    now += 30_000;
    l.check('root', '10.0.0.3');
    l.failed('alice', '10.0.0.9');
    l.succeeded('alice');
    l.failed('alice', '10.0.0.9');
    l.check('alice', '10.0.0.9');
  });

  test('a flood of made-up names and addresses stays within maxTracked', () => {
    const l = new SigninLimiter({ perName: 5, perAddress: 5, windowMs: 60_000, maxTracked: 100 }, clock);
    for (let i = 0; i < 10_000; i++) l.failed(`name-${i}`, `10.0.${i >> 8}.${i & 255}`);
    expect(l.tracked.names).toBeLessThanOrEqual(100);
    expect(l.tracked.addresses).toBeLessThanOrEqual(100);
    // The newest entries are the ones kept.
    for (let i = 0; i < 4; i++) l.failed('name-9999', '10.0.39.15');
    expect(() => l.check('name-9999', '10.9.9.9')).toThrow(/user name/);
    expect(() => l.check('someone', '10.0.39.15')).toThrow(/address/);
  });
});
