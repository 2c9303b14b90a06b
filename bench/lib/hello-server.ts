/**
 * A plain uWebSockets.js HTTP hello-world: the floor of bench/bootstrap (what one HTTP request
 * costs a uWS process doing no work of its own). Run as a child process, never imported:
 *
 *   HELLO_BODY_BYTES=N node dist/bench/lib/hello-server.js    prints {"msg":"listening","port":N}
 *
 * POST (any path): reads the body to its end, answers 200 with N constant bytes (the same exchange
 * shape as /bootstrap/v1/resolve: a small body in, a body of the same size out). GET: "Hello World!".
 * Binds 127.0.0.1 on a free port. Exits on SIGTERM / SIGINT and when its stdin closes.
 */
import uWS from 'uWebSockets.js';
import { listenAsFloor } from './floor-listen.js';

const body = Buffer.alloc(Number(process.env.HELLO_BODY_BYTES ?? 12), 0x61);
const app = uWS.App();
app.post('/*', (res) => {
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  res.onData((_ab, isLast) => {
    if (isLast && !aborted) res.cork(() => res.writeHeader('content-type', 'application/octet-stream').end(body));
  });
});
app.get('/*', (res) => {
  res.end('Hello World!');
});

listenAsFloor(app, 'hello-server');
