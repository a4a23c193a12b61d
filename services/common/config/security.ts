/**
 * The `security` block every networked program shares: mutual TLS from files (a CA, this
 * program's certificate and key), re-read on an interval so renewed files apply without a
 * restart. Plaintext needs `insecure: true`; a block with neither is refused at start (not at
 * parse, so a config file can be checked before its certificates exist).
 */
import { z } from 'zod';
import { duration } from './primitives';

export const securityBlock = z
  .strictObject({
    /** Plaintext gRPC (and piece HTTP) with no peer authentication; logged as a warning at start. */
    insecure: z.boolean().default(false),
    /** PEM file of the topology's CA: peers must present a certificate it issued. */
    caCert: z.string().default(''),
    /** PEM file of this program's certificate (cert-manager's `tls.crt`). */
    cert: z.string().default(''),
    /** PEM file of this program's private key (cert-manager's `tls.key`). */
    key: z.string().default(''),
    /** How often the three files are re-read; a renewed pair is used for new connections. */
    reloadInterval: duration.prefault('30s'),
  })
  .prefault({})
  .refine((s) => !(s.insecure && (s.caCert || s.cert || s.key)), {
    message: 'insecure: true turns TLS off; remove caCert/cert/key or set insecure: false',
    path: ['insecure'],
  });

export type SecurityConfig = z.output<typeof securityBlock>;

/** `server.rest.tls` of the manager (upstream key): HTTPS for REST and the console. */
export const restTlsBlock = z
  .strictObject({
    cert: z.string().default(''),
    key: z.string().default(''),
  })
  .prefault({})
  .refine((t) => (t.cert === '') === (t.key === ''), { message: 'set both cert and key (or neither, for plain HTTP)', path: ['cert'] });
