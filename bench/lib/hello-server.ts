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

let listenSocket: uWS.us_listen_socket | null = null;
app.listen('127.0.0.1', 0, (sock) => {
  if (!sock) {
    process.stderr.write('hello-server: listen on 127.0.0.1 failed\n');
    process.exit(1);
  }
  listenSocket = sock;
  process.stdout.write(JSON.stringify({ msg: 'listening', port: uWS.us_socket_local_port(sock as unknown as uWS.us_socket) }) + '\n');
});

const stop = (): void => {
  if (listenSocket) uWS.us_listen_socket_close(listenSocket);
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
