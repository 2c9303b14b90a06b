/**
 * The end of every floor server script (echo-server.ts, hello-server.ts): listen on 127.0.0.1 on a
 * free port, print {"msg":"listening","port":N} (bench/lib/child.ts waits for it), and exit on
 * SIGTERM / SIGINT or when stdin closes (the parent went away without stopping it).
 */
import uWS from 'uWebSockets.js';

export function listenAsFloor(app: uWS.TemplatedApp, name: string): void {
  let listenSocket: uWS.us_listen_socket | null = null;
  app.listen('127.0.0.1', 0, (sock) => {
    if (!sock) {
      process.stderr.write(`${name}: listen on 127.0.0.1 failed\n`);
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
  process.stdin.on('close', stop);
  process.stdin.resume();
}
