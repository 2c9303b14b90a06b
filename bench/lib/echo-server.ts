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
import { listenAsFloor } from './floor-listen.js';

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

listenAsFloor(app, 'echo-server');
