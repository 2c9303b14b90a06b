/**
 * A plain uWebSockets.js echo server: the floor of bench/events (what one WebSocket message in and
 * one out costs a uWS process with no work of its own). Run as a child process by
 * bench/lib/echo.ts, never imported:
 *
 *   node dist/bench/lib/echo-server.js      prints {"msg":"listening","port":N} on stdout
 *
 * Binds 127.0.0.1 on a free port, with the WebSocket settings of the latchkey gateway
 * (src/transport/gateway.ts: no compression, no automatic pings, same payload and backpressure
 * limits), and echoes every message back as it came (ws.send(message, isBinary)). Exits on SIGTERM /
 * SIGINT, and when its stdin closes (the parent went away without stopping it).
 */
import uWS from 'uWebSockets.js';

const MAX_FRAME_BYTES = 64 * 1024;

const app = uWS.App();
app.ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: MAX_FRAME_BYTES * 4,
  idleTimeout: 960,
  maxBackpressure: 1024 * 1024,
  closeOnBackpressureLimit: 0,
  sendPingsAutomatically: false,
  message: (ws, message, isBinary) => {
    ws.send(message, isBinary, false);
  },
});

let listenSocket: uWS.us_listen_socket | null = null;
app.listen('127.0.0.1', 0, (sock) => {
  if (!sock) {
    process.stderr.write('echo-server: listen on 127.0.0.1 failed\n');
    process.exit(1);
  }
  listenSocket = sock;
  const port = uWS.us_socket_local_port(sock as unknown as uWS.us_socket);
  process.stdout.write(JSON.stringify({ msg: 'listening', port }) + '\n');
});

const stop = (): void => {
  if (listenSocket) uWS.us_listen_socket_close(listenSocket);
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
