/**
 * Port checks made before a node touches anything (store, key ring): a second server started on
 * taken ports stops at once with LK_LISTEN_FAILED naming the port, instead of starting half-way.
 * The gateway's own exclusive listen (transport/gateway.ts) stays the real guard; this is the early,
 * clear answer.
 */
import net from 'node:net';
import { LatchkeyError } from '../errors.js';

/** Fail with LK_LISTEN_FAILED if `host:port` is taken (by anyone, shared or not); returns the port (picked when 0). */
export function probePort(host: string, port: number, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => {
      reject(new LatchkeyError('LK_LISTEN_FAILED', `${what} port ${host}:${port}: ${err.code === "EADDRINUSE" ? "in use by another process" : err.code ?? err.message}`));
    });
    srv.listen({ host, port, exclusive: true }, () => {
      const got = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(got));
    });
  });
}

